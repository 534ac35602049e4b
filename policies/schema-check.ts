import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { PolicyErrorCode } from './errors.ts';
import type { SourceFile, YamlPath } from './source.ts';

/** Absolute path of the published JSON Schema (editors reference it through a
 * `# yaml-language-server: $schema=...` line). */
export const SCHEMA_PATH = new URL('./schema/policy.schema.json', import.meta.url);

let validator: ValidateFunction | undefined;

function getValidator(): ValidateFunction {
  if (!validator) {
    const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as object;
    // allErrors: report every problem, not the first one.
    validator = new Ajv({ allErrors: true, strict: false }).compile(schema);
  }
  return validator;
}

function pathOf(instancePath: string): YamlPath {
  if (instancePath === '') return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function describe(path: YamlPath): string {
  return path.length === 0 ? 'the file' : `"${path.filter((p) => typeof p === 'string').slice(-1)[0] ?? path.join('.')}"`;
}

/**
 * Validate one parsed file against the schema and record each ajv error as a located problem.
 * Returns true when the file is schema-valid.
 */
export function checkSchema(src: SourceFile): boolean {
  if (src.value === null || src.value === undefined) return true; // an empty file is allowed
  const validate = getValidator();
  if (validate(src.value)) return true;
  const seen = new Set<string>();
  for (const e of validate.errors as ErrorObject[]) {
    const path = pathOf(e.instancePath);
    let code: PolicyErrorCode = 'ERR_POLICY_SCHEMA';
    let message: string;
    let at = path;
    let key = false;
    const params = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case 'additionalProperties':
        code = 'ERR_POLICY_UNKNOWN_KEY';
        at = [...path, String(params.additionalProperty)];
        key = true;
        message = `unknown key "${String(params.additionalProperty)}"`;
        break;
      case 'type':
        code = 'ERR_POLICY_WRONG_TYPE';
        message = `wrong type for ${describe(path)}: expected ${String(params.type).replace(',', ' or ')}`;
        break;
      case 'required':
        code = 'ERR_POLICY_MISSING_KEY';
        message = `missing required key "${String(params.missingProperty)}"`;
        break;
      case 'minProperties':
      case 'maxProperties':
        message = path.includes('target') || path.includes('default') || path.at(-1) === 'key'
          ? `${describe(path)} needs exactly one of ${path.at(-1) === 'key' ? 'file, secret' : 'shard, shards, regions'}`
          : `${describe(path)} must not be empty`;
        break;
      case 'enum':
        message = `${describe(path)} must be one of ${(params.allowedValues as unknown[]).join(', ')}`;
        break;
      case 'pattern':
        message = `invalid value for ${describe(path)}: does not match ${String(params.pattern)}`;
        break;
      default:
        message = `${describe(path)} ${e.message ?? 'is invalid'}`;
    }
    const dedupe = `${at.join('/')}|${message}`;
    if (seen.has(dedupe)) continue;
    seen.add(dedupe);
    src.problem(at, code, message, key);
  }
  return false;
}
