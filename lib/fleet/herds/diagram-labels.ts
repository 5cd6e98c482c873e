// The diagram's labels: each piece of text wrapped to the room it has and measured (conservatively,
// lib/fleet/herds/text-metrics.ts), as a box that the layout places and the tests check for overlaps.
import { lineHeight, textWidth, wrapText, type Font } from './text-metrics';

/** Between two labels stacked one above the other (and two stacked PgBouncers). */
export const STACK_GAP = 3;

export const FONTS = {
  host: { size: 13, bold: true },
  state: { size: 12 },
  site: { size: 11 },
  dns: { size: 11 },
  lag: { size: 11 },
  pooler: { size: 12 },
} as const satisfies Record<string, Font>;

/** A piece of text as drawn: its lines from the top-left corner, in a box no other label's box meets. */
export interface TextBox {
  kind: keyof typeof FONTS;
  /** Whole: the lines joined. */
  text: string;
  lines: string[];
  x: number;
  y: number;
  width: number;
  height: number;
  /** A DNS name that does not answer what it should. */
  warn?: boolean;
}

/** `text` wrapped to `maxWidth`, its box at (0, 0) until placed. */
export function textBox(kind: TextBox['kind'], text: string, maxWidth: number, warn?: boolean): TextBox {
  const font = FONTS[kind];
  const lines = wrapText(text, font, maxWidth);
  const box: TextBox = {
    kind,
    text,
    lines,
    x: 0,
    y: 0,
    width: Math.max(...lines.map((l) => textWidth(l, font))),
    height: lines.length * lineHeight(font),
  };
  return warn ? { ...box, warn } : box;
}

/** Stacks boxes downwards from y at x; returns the y under the last. */
export function stack(boxes: { x: number; y: number; height: number }[], x: number, y: number): number {
  for (const b of boxes) {
    b.x = x;
    b.y = y;
    y += b.height + STACK_GAP;
  }
  return boxes.length ? y - STACK_GAP : y;
}

export const heightOf = (boxes: { height: number }[]) => (boxes.length ? boxes.reduce((a, b) => a + b.height + STACK_GAP, -STACK_GAP) : 0);
