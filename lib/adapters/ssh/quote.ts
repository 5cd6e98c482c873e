// POSIX shell quoting: every remote command is an argument list, never a string pasted together.

const SAFE = /^[A-Za-z0-9_/.,:=@%+-]+$/;

export function quoteArg(arg: string): string {
  if (arg.includes('\0')) throw new Error('an argument contains a NUL byte');
  if (arg !== '' && SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** argv -> one shell command line; each argument reaches the program exactly as given. */
export function shellCommand(argv: readonly string[]): string {
  if (!argv.length) throw new Error('empty command');
  return argv.map(quoteArg).join(' ');
}

/** The command as it is recorded and logged: secrets (passwords, tokens) replaced. */
export function redact(command: string, secrets: readonly string[] = []): string {
  // password=x, password = 'a b', password="a b", PGPASSWORD=x, "password": "x", and user:secret@ in URLs.
  let out = command
    .replace(/\b((?:pg)?pass(?:word)?\s*[=:]\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s'",;]+)/gi, '$1***')
    .replace(/("(?:pg)?pass(?:word)?"\s*:\s*)"(?:[^"\\]|\\.)*"/gi, '$1"***"')
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:@/\s]+:)[^@\s]+@/gi, '$1***@');
  for (const s of secrets) if (s) out = out.split(s).join('***');
  return out;
}
