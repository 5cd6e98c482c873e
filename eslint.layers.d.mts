import type { Linter } from 'eslint';

export const FLOORS: string[];
export const TEST_SIDE: string[];
export const floorConfigs: Linter.Config[];
export const cycleConfigs: Linter.Config[];
export const layerConfigs: Linter.Config[];
export const ACTION_FAMILIES: string[];
export const shortPlans: Linter.Config;
