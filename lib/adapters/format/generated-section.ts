// A section of a markdown page that code renders (a table, a drawing) between two marker comments,
// `<!-- name:start -->` and `<!-- name:end -->`; the prose around it is the page's own.

/** `doc` with `text` between its `name` markers; throws when the page has no such markers. */
export function withSection(doc: string, name: string, text: string): string {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const a = doc.indexOf(start);
  const b = doc.indexOf(end);
  if (a < 0 || b < a) throw new Error(`the page has no ${start} … ${end}`);
  return `${doc.slice(0, a + start.length)}\n\n${text}\n\n${doc.slice(b)}`;
}
