import { stopLab } from '../lib/lab/lab';
import { E2E_LAB_FILE } from './lab';

export default async function globalTeardown() {
  await stopLab(E2E_LAB_FILE);
}
