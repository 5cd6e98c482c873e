import Link from 'next/link';

export function Pagination({
  page,
  pages,
  total,
  labelPlural,
  hrefFor,
  perOptions,
  per,
  perHref,
}: {
  page: number;
  pages: number;
  total: number;
  labelPlural: string;
  hrefFor: (page: number) => string;
  perOptions: readonly number[];
  per: number;
  perHref: (per: number) => string;
}) {
  // Django-style: the first and last two pages, and three either side of the current one.
  const shown = [...new Set([1, 2, page - 3, page - 2, page - 1, page, page + 1, page + 2, page + 3, pages - 1, pages])]
    .filter((p) => p >= 1 && p <= pages)
    .sort((a, b) => a - b);
  return (
    <nav className="paginator" aria-label="Pages">
      {shown.map((p, i) => (
        <span key={p}>
          {i > 0 && shown[i - 1] !== p - 1 && <span className="gap">{'\u2026'} </span>}
          {p === page ? (
            <span className="this-page" aria-current="page">
              {p}
            </span>
          ) : (
            <Link prefetch={false} href={hrefFor(p)}>
              {p}
            </Link>
          )}{' '}
        </span>
      ))}
      <span className="total">
        {total} {labelPlural}
      </span>
      <span className="per-page">
        {' \u00b7 per page: '}
        {perOptions.map((n) =>
          n === per ? (
            <strong key={n}>{n} </strong>
          ) : (
            <span key={n}>
              <Link prefetch={false} href={perHref(n)}>
                {n}
              </Link>{' '}
            </span>
          ),
        )}
      </span>
    </nav>
  );
}
