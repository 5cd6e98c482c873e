// Messages written for people, for every check that does not say its own: zod's defaults read like
// "Too big: expected string to have <=20 characters". Imported (for its effect) by the modules that
// declare forms and API bodies, so that each one gets them wherever it is used, client or server.
import { z } from 'zod';
import type { $ZodRawIssue } from 'zod/v4/core';

type Issue = $ZodRawIssue;

const plural = (n: number | bigint, one: string, many: string) => `${n} ${Number(n) === 1 ? one : many}`;

export function humanMessage(iss: Issue): string | undefined {
  switch (iss.code) {
    case 'too_big':
      if (iss.origin === 'string') return `At most ${plural(Number(iss.maximum), 'character', 'characters')}.`;
      if (iss.origin === 'array' || iss.origin === 'set') return `At most ${plural(Number(iss.maximum), 'item', 'items')}.`;
      return `At most ${iss.maximum}.`;
    case 'too_small':
      if (iss.origin === 'string')
        return Number(iss.minimum) <= 1 ? 'This field is required.' : `At least ${plural(Number(iss.minimum), 'character', 'characters')}.`;
      if (iss.origin === 'array' || iss.origin === 'set') return `At least ${plural(Number(iss.minimum), 'item', 'items')}.`;
      return `At least ${iss.minimum}.`;
    case 'invalid_type':
      if (iss.input === undefined) return 'This field is required.';
      if (iss.expected === 'number' || iss.expected === 'int') return 'Enter a number.';
      if (iss.expected === 'boolean') return 'Enter true or false.';
      if (iss.expected === 'string') return 'Enter text.';
      if (iss.expected === 'array') return 'Enter a list.';
      return `Enter a value of the right kind (${iss.expected}).`;
    case 'invalid_value':
      return `Choose one of: ${iss.values.map(String).join(', ')}.`;
    case 'invalid_format':
      return 'This is not in the expected format.';
    case 'not_multiple_of':
      return `Enter a multiple of ${iss.divisor}.`;
    case 'unrecognized_keys':
      return `Unknown field${iss.keys.length === 1 ? '' : 's'}: ${iss.keys.join(', ')}.`;
    case 'invalid_union':
      return 'This value is not one of those accepted.';
    default:
      return undefined;
  }
}

z.config({ customError: humanMessage });
