import type { Linter } from 'eslint';

export const TEST_SIDE: string[];
export const layerConfigs: Linter.Config[];
