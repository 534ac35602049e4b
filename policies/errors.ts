import { MailmeshError } from '../common/errors.ts';

/** Every code a policy problem or error can carry. Tests and the control plane branch on these. */
export type PolicyErrorCode =
  | 'ERR_POLICY_INVALID'
  | 'ERR_POLICY_YAML'
  | 'ERR_POLICY_SCHEMA'
  | 'ERR_POLICY_UNKNOWN_KEY'
  | 'ERR_POLICY_WRONG_TYPE'
  | 'ERR_POLICY_MISSING_KEY'
  | 'ERR_POLICY_NO_FILES'
  | 'ERR_POLICY_NO_TRUST_DOMAIN'
  | 'ERR_POLICY_DUPLICATE_KEY'
  | 'ERR_POLICY_DUPLICATE_SHARD'
  | 'ERR_POLICY_DUPLICATE_DOMAIN'
  | 'ERR_POLICY_DUPLICATE_RULE'
  | 'ERR_POLICY_UNKNOWN_SHARD'
  | 'ERR_POLICY_UNKNOWN_REGION'
  | 'ERR_POLICY_RESIDENCY'
  | 'ERR_POLICY_OVERLAPPING_RULES'
  | 'ERR_POLICY_USER_TWICE'
  | 'ERR_POLICY_BAD_ADDRESS'
  | 'ERR_POLICY_BAD_DURATION'
  | 'ERR_POLICY_BAD_PATTERN'
  | 'ERR_POLICY_KEY_MATERIAL'
  | 'ERR_POLICY_DIRECTORY'
  | 'ERR_POLICY_TOO_MANY_PROBLEMS'
  | 'ERR_POLICY_SNAPSHOT'
  | 'ERR_POLICY_GIT';

/** One validation problem, located in a policy file (YAML) or a directory file (CSV/JSONL).
 * `file` is relative to the policy directory; `line` and `col` are 1-based. */
export interface Problem {
  file: string;
  line: number;
  col: number;
  code: PolicyErrorCode;
  message: string;
}

/** Format a problem the way compilers do, so editors and CI annotate the line:
 * `domains.yaml:12:9: unknown shard "kyoto-1"`. */
export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.message}`;
}

/** A policy library error. `problems` lists every validation problem found (never just the
 * first), sorted by file, line and column. */
export class PolicyError extends MailmeshError<PolicyErrorCode> {
  readonly problems: Problem[];
  constructor(code: PolicyErrorCode, message: string, problems: Problem[] = [], options?: ErrorOptions) {
    super(code, message, options);
    this.problems = problems;
  }
}
