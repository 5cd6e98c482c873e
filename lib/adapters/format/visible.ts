// Text a user must compare by eye (an EC2 tag beside a herd's name): what cannot be seen is shown.
// A space at either end of a part becomes "␣" and a control character its \u escape, so that a tag
// "orders " never reads as the herd "orders" it disagrees with.

/** `text` with its parts (split on `sep`) made visible at their ends, and control characters escaped. */
export function visibleEnds(text: string, sep = '/'): string {
  return text
    .split(sep)
    .map((part) => {
      const lead = part.length - part.trimStart().length;
      const trail = part.trim() ? part.length - part.trimEnd().length : 0;
      return '\u2423'.repeat(lead) + part.slice(lead, part.length - trail) + '\u2423'.repeat(trail);
    })
    .join(sep)
    .replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028\u2029\ufeff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
