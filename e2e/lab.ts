import path from 'node:path';
import { readLab } from '../lib/lab/lab';

export const E2E_LAB_FILE = path.join(__dirname, '..', '.lab', 'e2e-lab.json');

export function e2eLab() {
  const lab = readLab(E2E_LAB_FILE);
  if (!lab.console) throw new Error('the e2e console is not running (global setup failed?)');
  return { ...lab, console: lab.console };
}
