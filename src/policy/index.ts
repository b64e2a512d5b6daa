/**
 * The Cedar policy module's public surface: the engine, the time and context helpers the
 * application needs, and `policy test` support. Everything else in src/policy is internal.
 */
export { CedarPolicyEngine, type CedarPolicyEngineOptions } from './cedar-policy-engine.js';
export { compareStrictness, routeDefaults } from './policy-annotations.js';
export {
  type CaseEngine,
  formatPolicyCaseResults,
  type PolicyCaseIssue,
  type PolicyCaseResult,
  runPolicyCases,
} from './policy-cases.js';
export {
  buildPolicyContext,
  isKnownTimeZone,
  type PolicyClockReading,
  type PolicyFacts,
  policyClock,
  type Weekday,
  weekdays,
} from './policy-context.js';
export type { LoadedPolicy, PolicyIssue, PolicySource } from './policy-loader.js';
export { portcullisSchemaText } from './policy-schema.js';
