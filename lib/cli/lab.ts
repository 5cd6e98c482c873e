// npm run lab -- up [--file F] [--no-fleet] | down [--file F] | status [--file F]
import { DEFAULT_LAB_FILE, readLab, startLab, stopLab } from '../lab/lab';

async function main() {
  const [cmd = 'status', ...rest] = process.argv.slice(2);
  const fileAt = rest.indexOf('--file');
  const file = (fileAt >= 0 ? rest[fileAt + 1] : undefined) ?? DEFAULT_LAB_FILE;
  const log = (m: string) => console.log(`lab: ${m}`);
  if (cmd === 'up') {
    const t0 = Date.now();
    const info = await startLab({ file, fleet: rest.includes('--no-fleet') ? false : undefined, log });
    console.log(`lab: up in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${info.instances.length} fleet instances; described in ${file}`);
  } else if (cmd === 'down') {
    await stopLab(file, log);
    console.log('lab: down');
  } else if (cmd === 'status') {
    console.log(JSON.stringify(readLab(file), null, 2));
  } else {
    console.error('usage: npm run lab -- up|down|status [--file FILE] [--no-fleet]');
    process.exit(2);
  }
}

main().catch((err: unknown) => {
  console.error(`lab: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
