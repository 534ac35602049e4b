// The policies library: load (YAML + directories, located errors), compile, route, authorize,
// snapshot encoding and revision planning. Used by the control plane, the sidecar and the CLI.
export { loadPolicy, listPolicyFiles } from './load.ts';
export { compilePolicy, type CompileOptions } from './compile.ts';
export { route, isKnownUser, findDomain } from './route.ts';
export { authorize } from './authorize.ts';
export { serializeCompiled, deserializeCompiled, SNAPSHOT_FORMAT } from './serialize.ts';
export { PolicyError, formatProblem, type Problem, type PolicyErrorCode } from './errors.ts';
export { SCHEMA_PATH } from './schema-check.ts';
export type { CompiledPolicy, CompiledDomain, CompiledShard } from './compiled.ts';
export type { Policy, Shard, Domain, Rule, Target, RouteResult, AuthorizationRule, DkimKeyRef, DomainAuth, ShardBackends } from './types.ts';
export { planChanges, type Plan, type UserMove, type HashedMovement } from './plan.ts';
export { exportRevision } from './git.ts';
