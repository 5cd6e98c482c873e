// POST /api/v1/spot/interruptions: EC2's spot interruption warning, from EventBridge or a host's agent.
import { z } from 'zod';
import { spotNoticeSchema } from '@/lib/features/spot/notice';
import { defineRoute } from './define';

export const spotNoticeRoute = defineRoute({
  method: 'post',
  path: '/api/v1/spot/interruptions',
  tag: 'Agents',
  summary: 'Report a spot interruption warning (EventBridge, or the agent)',
  description:
    'The event EventBridge sends for "EC2 Spot Instance Interruption Warning" (an API destination whose API key is `Authorization: Bearer <PGHERD_SPOT_EVENTS_TOKEN>`), or the same event from the host\'s agent with its agent token, for its own instance only, and moved only once EC2 itself says the instance is spot capacity with an interruption pending (its spot request marked for termination, stop or hibernation). Each member on the instance is evacuated at once (its read names drained, a primary switched over, a successor launched like it, the member retired), as the system. The same notice again answers what the first one started.',
  auth: 'agent',
  body: spotNoticeSchema,
  responses: {
    200: {
      description: 'Recorded; the evacuations started (or why none).',
      schema: z
        .object({
          id: z.number().int().optional(),
          operations: z.array(z.number().int()).optional(),
          outcome: z.string().optional(),
          duplicate: z.boolean().optional(),
        })
        .meta({ id: 'SpotNoticeResult' }),
    },
  },
  errors: {
    403: "The token is neither EventBridge's nor the agent's of that instance.",
    404: 'No server of the inventory is that instance.',
    409: "An agent's notice EC2 does not confirm (not spot capacity, no interruption pending, or EC2 could not be asked): held, nothing moved, the refusal audited.",
  },
});
