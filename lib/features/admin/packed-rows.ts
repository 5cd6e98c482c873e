// A changelist's rows packed for the browser and unpacked there (PackedRows in types.ts): the server's
// page packs them, the table's client component unpacks them. Nothing here may import server code.
import type { PackedRows, RowView } from './types';

/** `rows` as the browser gets them (PackedRows). */
export function packRows(rows: RowView[]): PackedRows {
  const texts: string[] = [];
  const at = new Map<string, number>();
  const index = (t: string) => {
    let i = at.get(t);
    if (i === undefined) {
      i = texts.push(t) - 1;
      at.set(t, i);
    }
    return i;
  };
  return {
    texts,
    rows: rows.map((r) => {
      const packed: PackedRows['rows'][number] = [r.id, r.values.map(index)];
      if (r.links || r.locked) packed.push(r.links ?? 0);
      if (r.locked) packed.push(1);
      return packed;
    }),
  };
}

/** PackedRows back into rows. */
export function unpackRows(p: PackedRows): RowView[] {
  return p.rows.map(([id, cells, links, locked]) => {
    const r: RowView = { id, values: cells.map((i) => p.texts[i] ?? '') };
    if (links) r.links = links;
    if (locked) r.locked = true;
    return r;
  });
}
