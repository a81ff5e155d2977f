// API roles, in increasing power: viewer reads; operator also checks, promotes, pins, rolls
// back and freezes; admin also manages tokens.
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export function roleAllows(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}
