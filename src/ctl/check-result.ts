export type CheckStatus = 'ok' | 'warn' | 'fail';

/** One row of `ambit check`: what was checked, the verdict, and what to do about anything short of ok. */
export interface CheckResult {
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
  /** What to do about a warning or failure. */
  readonly fix?: string;
}
