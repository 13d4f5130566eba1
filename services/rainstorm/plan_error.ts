/**
 * The error of a job command that cannot run as written (answered 400). In a file of its own so
 * that plan.ts and rate_schedule.ts, which both raise it, do not import each other.
 */
export class PlanError extends Error {}
