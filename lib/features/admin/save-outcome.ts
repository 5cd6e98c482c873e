export type SaveOutcome = { ok: true; redirect: string } | { ok: false; fieldErrors: Record<string, string>; formError?: string };
