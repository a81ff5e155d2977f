// What the services' state routes read: which scheduler shards, messaging shards and file
// volumes, the scheduler's usage bucket width, and where tenants' subtrees live.
export interface ServiceViewOptions {
  /** Scheduler shards the API reads (default ['0']). */
  schedulerShards?: readonly string[];
  /** Width of the scheduler's usage buckets (default: the worker runtime's, 10 s). */
  usageBucketMs?: number;
  /** Messaging shards (default ['0']). */
  messagingShards?: readonly string[];
  /** File volumes (default ['default']). */
  fileVolumes?: readonly string[];
  /** Where tenants' subtrees live in every volume (default '/tenants'). */
  tenantRoot?: string;
}
