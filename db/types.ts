// The domain's small types, one place each, derived from the schema's enums so that a value added
// to an enum is a type change everywhere it is used.
import type { controlDriver, instanceRole, instanceState, operationStatus, roleName } from './schema';

/** What a user may do in an environment: viewer < operator < admin. */
export type Role = (typeof roleName.enumValues)[number];
/** What an instance is in its herd. */
export type InstanceRole = (typeof instanceRole.enumValues)[number];
/** What the inventory says of an instance (observed, or set by pgherd on purpose: fenced, needs_rebuild). */
export type InstanceState = (typeof instanceState.enumValues)[number];
export type ControlDriver = (typeof controlDriver.enumValues)[number];
export type OperationStatus = (typeof operationStatus.enumValues)[number];
