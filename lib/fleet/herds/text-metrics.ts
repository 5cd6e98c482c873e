// How wide a line of the diagram's text is, without a browser to measure it: the server lays the SVG
// out before any font is known. The diagram uses the page's sans-serif (system-ui, ..., sans-serif;
// DejaVu Sans on Debian, the widest of the usual ones), so each character counts at the width of
// its class in DejaVu Sans Bold, rounded up: an estimate that is never narrower than the text drawn,
// whatever the weight, which is what keeps labels from running into each other.

export interface Font {
  /** In px. */
  size: number;
  bold?: boolean;
}

// Em widths, upper bounds of DejaVu Sans Bold's advances for the characters of each class.
const NARROW = new Set(" !'(),-./:;I[\\]fijlrt|J");
const WIDE_UPPER = new Set('ABDGHKMNOQRUVX');
const SYMBOLS = new Set('#+<=>^~&%@');
const WIDEST = new Set('mwMW%@');
const em = (c: string): number => {
  if (WIDEST.has(c)) return 1.15;
  if (NARROW.has(c)) return 0.5;
  if (WIDE_UPPER.has(c) || SYMBOLS.has(c)) return 0.9;
  // Other ASCII: digits, most lower case, the narrower capitals and punctuation (0.73 at most).
  if (c >= ' ' && c <= '~') return 0.75;
  // Outside ASCII (accents, CJK, symbols): wider than any ASCII character.
  return 1.25;
};

/** The width of `text` in px, at least what a browser draws. */
export function textWidth(text: string, font: Font): number {
  let w = 0;
  for (const c of text) w += em(c);
  return Math.ceil(w * font.size);
}

/** The distance between baselines: the glyphs of a line (ascent and descent, 1.17 em in DejaVu Sans) fit in it. */
export const lineHeight = (font: Font): number => Math.ceil(font.size * 1.3);

/** From a line's top to its baseline. */
export const ascent = (font: Font): number => Math.ceil(font.size * 0.95);

// Host and DNS names break after their separators, as a reader splits them.
const BREAK_AFTER = /(?<=[.\-:_/, ])/;

/**
 * `text` in lines no wider than `maxWidth`, broken after a separator where one fits, else between
 * characters. The lines joined give `text` back: nothing is cut or added.
 */
export function wrapText(text: string, font: Font, maxWidth: number): string[] {
  if (textWidth(text, font) <= maxWidth) return [text];
  const lines: string[] = [];
  let line = '';
  const push = (piece: string) => {
    if (textWidth(line + piece, font) <= maxWidth) {
      line += piece;
      return;
    }
    if (line) lines.push(line);
    line = '';
    // A piece wider than a whole line goes character by character.
    for (const c of piece) {
      if (line && textWidth(line + c, font) > maxWidth) {
        lines.push(line);
        line = '';
      }
      line += c;
    }
  };
  for (const piece of text.split(BREAK_AFTER)) push(piece);
  if (line) lines.push(line);
  return lines;
}
