/**
 * Reads Cedar policy files once at start-up: parses them, checks every `@id` and route annotation,
 * and validates the whole set against the Portcullis schema (Cedar's strict mode). Every problem in
 * every file is collected and reported together as one `config_invalid` error, each with
 * `file:line:column` and Cedar's own message.
 */
import {
  type DetailedError,
  type EntityUidJson,
  type PolicyJson,
  policySetTextToParts,
  policyToJson,
  validate,
} from '@cedar-policy/cedar-wasm/nodejs';
import { PortcullisError } from '../core/errors.js';
import { type ApprovalRoute, type PolicyAction, policyActions } from '../core/policy-decision.js';
import {
  type Annotations,
  defaultRoute,
  hasRouteAnnotations,
  knownAnnotationKeys,
  readRoute,
  unknownAnnotations,
} from './policy-annotations.js';
import { cedarTypes, portcullisSchemaText } from './policy-schema.js';

/** One policy file's name (as shown in messages) and text. */
export interface PolicySource {
  readonly name: string;
  readonly text: string;
}

/** A policy that passed every check, with what the engine needs to index and explain it. */
export interface LoadedPolicy {
  /** From its `@id` annotation; unique across all files. */
  readonly id: string;
  readonly effect: 'permit' | 'forbid';
  readonly text: string;
  readonly file: string;
  readonly line: number;
  readonly description: string | null;
  /** Actions the policy's scope admits; every action when the scope says `action`. */
  readonly actions: ReadonlySet<PolicyAction>;
  /**
   * The resource id the scope pins the policy to (`resource in Portcullis::Resource::"x"`,
   * `resource == Portcullis::Role::"x/r"`), or null when it can match any resource.
   */
  readonly resourceId: string | null;
  /** For permits that can apply to `request`: the approval route read from the annotations. */
  readonly route: ApprovalRoute | null;
}

export interface PolicyIssue {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly policyId: string | null;
  readonly message: string;
}

export interface LoadedPolicySet {
  readonly policies: readonly LoadedPolicy[];
  /** Cedar's validation warnings and Portcullis' own, for the start-up log. */
  readonly warnings: readonly string[];
}

/** Policy ids appear in audit events and messages: keep them short and unambiguous. */
const policyIdPattern = /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$/;

/** Byte offset ↔ line/column in one file (Cedar reports UTF-8 byte offsets). */
class SourceMap {
  private readonly bytes: Buffer;
  constructor(readonly source: PolicySource) {
    this.bytes = Buffer.from(source.text, 'utf8');
  }
  byteOffsetOf(charIndex: number): number {
    return Buffer.byteLength(this.source.text.slice(0, charIndex), 'utf8');
  }
  position(byteOffset: number): { line: number; column: number } {
    const before = this.bytes
      .subarray(0, Math.max(0, Math.min(byteOffset, this.bytes.length)))
      .toString('utf8');
    const lines = before.split('\n');
    return { line: lines.length, column: (lines.at(-1)?.length ?? 0) + 1 };
  }
}

interface ParsedPolicy {
  readonly source: SourceMap;
  readonly text: string;
  /** Byte offset of the policy text in its file. */
  readonly byteOffset: number;
  readonly json: PolicyJson;
}

function cedarMessage(error: DetailedError): string {
  return error.help ? `${error.message} (${error.help})` : error.message;
}

function uidOf(value: EntityUidJson): { type: string; id: string } {
  return '__entity' in value ? value.__entity : value;
}

function scopeActions(json: PolicyJson): Set<PolicyAction> {
  const constraint = json.action;
  const known: readonly string[] = policyActions;
  let uids: EntityUidJson[];
  if (constraint.op === 'All') return new Set(policyActions);
  if (constraint.op === '==') uids = 'entity' in constraint ? [constraint.entity] : [];
  else uids = 'entities' in constraint ? constraint.entities : [constraint.entity];
  const actions = new Set<PolicyAction>();
  for (const uid of uids.map(uidOf)) {
    if (uid.type === cedarTypes.action && known.includes(uid.id)) actions.add(uid.id as PolicyAction);
  }
  return actions;
}

/** The resource id a scope entity pins the policy to, if any (role ids are `resource/role`). */
function pinnedResourceId(value: EntityUidJson): string | null {
  const uid = uidOf(value);
  if (uid.type === cedarTypes.resource) return uid.id;
  if (uid.type === cedarTypes.role) return uid.id.split('/')[0] ?? uid.id;
  return null;
}

function scopeResourceId(json: PolicyJson): string | null {
  const constraint = json.resource;
  if (constraint.op === 'All') return null;
  if (constraint.op === 'is')
    return constraint.in && 'entity' in constraint.in ? pinnedResourceId(constraint.in.entity) : null;
  return 'entity' in constraint ? pinnedResourceId(constraint.entity) : null;
}

/**
 * Finds each part's position in its file. Parts are verbatim slices of the file but come back in
 * id order, not source order, and one policy's text can be a substring of another's (the same rule
 * with and without annotations): place the longest first, each at an occurrence no earlier part took.
 */
function locateParts(text: string, parts: readonly string[]): number[] {
  const taken: { start: number; end: number }[] = [];
  const overlaps = (start: number, end: number) => taken.some((t) => start < t.end && t.start < end);
  const positions: number[] = new Array(parts.length).fill(0);
  const longestFirst = parts
    .map((_, i) => i)
    .sort((a, b) => (parts[b]?.length ?? 0) - (parts[a]?.length ?? 0));
  for (const i of longestFirst) {
    const part = parts[i] ?? '';
    let at = text.indexOf(part);
    while (at >= 0 && overlaps(at, at + part.length)) at = text.indexOf(part, at + 1);
    if (at < 0) continue;
    taken.push({ start: at, end: at + part.length });
    positions[i] = at;
  }
  return positions;
}

/**
 * Parses and checks every policy of `sources`.
 *
 * @throws PortcullisError `config_invalid` listing every problem (parse errors, missing or duplicate
 *   `@id`, invalid annotations, schema violations), each as `file:line:column: message`.
 */
export function loadPolicySet(sources: readonly PolicySource[]): LoadedPolicySet {
  const issues: PolicyIssue[] = [];
  const warnings: string[] = [];
  const issue = (source: SourceMap, byteOffset: number, policyId: string | null, message: string) => {
    issues.push({ file: source.source.name, ...source.position(byteOffset), policyId, message });
  };

  const parsed: ParsedPolicy[] = [];
  for (const input of sources) {
    const source = new SourceMap(input);
    const parts = policySetTextToParts(input.text);
    if (parts.type === 'failure') {
      for (const error of parts.errors) {
        issue(source, error.sourceLocations?.[0]?.start ?? 0, null, cedarMessage(error));
      }
      continue;
    }
    for (const [i, at] of locateParts(input.text, parts.policy_templates).entries()) {
      issue(source, source.byteOffsetOf(at), null, `policy templates are not supported (template ${i + 1})`);
    }
    const offsets = locateParts(input.text, parts.policies);
    parts.policies.forEach((text, i) => {
      const byteOffset = source.byteOffsetOf(offsets[i] ?? 0);
      const json = policyToJson(text);
      if (json.type === 'failure') {
        for (const error of json.errors) issue(source, byteOffset, null, cedarMessage(error));
        return;
      }
      parsed.push({ source, text, byteOffset, json: json.json });
    });
  }
  // Source order, so that messages and the synthetic keys below read top to bottom.
  parsed.sort((a, b) =>
    a.source === b.source
      ? a.byteOffset - b.byteOffset
      : sources.indexOf(a.source.source) - sources.indexOf(b.source.source),
  );

  const firstSeen = new Map<string, ParsedPolicy>();
  const keyed = new Map<string, ParsedPolicy>();
  const policies: LoadedPolicy[] = [];
  for (const policy of parsed) {
    const { source, byteOffset, json } = policy;
    const where = source.position(byteOffset);
    const annotations: Annotations = json.annotations ?? {};
    const id = annotations.id;
    let key: string | null = null;
    if (id === undefined || id === null) {
      issue(source, byteOffset, null, 'policy has no @id("…") annotation; every policy needs a unique id');
    } else if (!policyIdPattern.test(id)) {
      issue(source, byteOffset, id, `@id("${id}") must be letters, digits and _ . : / - (at most 128)`);
    } else if (firstSeen.has(id)) {
      const first = firstSeen.get(id) as ParsedPolicy;
      const at = first.source.position(first.byteOffset);
      issue(
        source,
        byteOffset,
        id,
        `duplicate @id("${id}"), first used at ${first.source.source.name}:${at.line}`,
      );
    } else {
      firstSeen.set(id, policy);
      key = id;
    }

    for (const name of unknownAnnotations(annotations)) {
      issue(
        source,
        byteOffset,
        id ?? null,
        `unknown annotation @${name} (known: ${knownAnnotationKeys.map((k) => `@${k}`).join(', ')})`,
      );
    }

    const actions = scopeActions(json);
    let route: ApprovalRoute | null = null;
    const routeAnnotated = hasRouteAnnotations(annotations);
    if (json.effect === 'forbid' && routeAnnotated) {
      issue(
        source,
        byteOffset,
        id ?? null,
        'approval annotations belong on permit policies, not on a forbid',
      );
    } else if (json.effect === 'permit' && !actions.has('request') && routeAnnotated) {
      issue(
        source,
        byteOffset,
        id ?? null,
        'approval annotations only apply to permit policies for action "request"',
      );
    } else if (json.effect === 'permit' && actions.has('request')) {
      const reading = readRoute(key ?? '', annotations);
      if (reading.ok) route = reading.route;
      else for (const problem of reading.problems) issue(source, byteOffset, id ?? null, problem);
    }

    // Policies whose id is unusable still get validated against the schema, under a stand-in key.
    keyed.set(key ?? `${source.source.name}:${where.line}`, policy);
    if (key !== null) {
      policies.push({
        id: key,
        effect: json.effect,
        text: policy.text,
        file: source.source.name,
        line: where.line,
        description: annotations.description ?? null,
        actions,
        resourceId: scopeResourceId(json),
        route: route ?? (json.effect === 'permit' && actions.has('request') ? defaultRoute(key) : null),
      });
    }
  }

  if (keyed.size > 0) {
    const answer = validate({
      schema: portcullisSchemaText,
      policies: { staticPolicies: Object.fromEntries([...keyed].map(([k, p]) => [k, p.text])) },
      validationSettings: { mode: 'strict' },
    });
    if (answer.type === 'failure') {
      for (const error of answer.errors)
        issues.push({
          file: '(policy set)',
          line: 0,
          column: 0,
          policyId: null,
          message: cedarMessage(error),
        });
    } else {
      // Cedar reports a schema violation once per action the policy can apply to; say it once.
      const reported = new Set<string>();
      for (const { policyId, error } of answer.validationErrors) {
        const start = error.sourceLocations?.[0]?.start ?? 0;
        const sameProblem = `${policyId}@${start}:${error.message.replace(/Portcullis::Action::"[^"]*"/g, '')}`;
        if (reported.has(sameProblem)) continue;
        reported.add(sameProblem);
        const policy = keyed.get(policyId);
        if (!policy) {
          issues.push({ file: '(policy set)', line: 0, column: 0, policyId, message: cedarMessage(error) });
          continue;
        }
        issue(policy.source, policy.byteOffset + start, policyId, cedarMessage(error));
      }
      for (const { policyId, error } of answer.validationWarnings) {
        warnings.push(`policy ${policyId}: ${cedarMessage(error)}`);
      }
      for (const error of answer.otherWarnings) warnings.push(cedarMessage(error));
    }
  }

  if (issues.length > 0) {
    const lines = issues.map((i) => `  ${i.file}:${i.line}:${i.column}: ${i.message}`);
    throw new PortcullisError(
      'config_invalid',
      `The policy set is not valid (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n${lines.join('\n')}`,
      { issues },
    );
  }
  if (policies.length === 0) warnings.push('the policy set is empty: every action will be denied');
  return { policies, warnings };
}
