import { decisionRoute } from '@/lib/features/api/decide-route';
import { webQueue } from '@/lib/entry/web/web-queue';

/** POST /api/v1/operations/{id}/deny { comment }: see lib/features/api/decide-route.ts. */
export const POST = decisionRoute('denied', webQueue);
