// Vitest setup file (each test file's process): pgherd's settings pointed at the shared lab, as the
// console and the worker get them, so that actions run in-process reach the fleet the way they would.
import { inject } from 'vitest';
import { readLab, useLabSettings } from '@/lib/lab/lab';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'; // see lib/lab/aws.ts
useLabSettings(readLab(inject('labFile')));
