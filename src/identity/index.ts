/**
 * Federation with OpenID Connect and SAML 2.0 identity providers: browser sign-in, IdP-issued JWTs
 * as API bearer tokens, per-IdP sign-in rules and group mapping, and the built-in demo identity
 * provider. See docs/identity-providers.md.
 */
export {
  type DemoIdentityProvider,
  type DemoIdentityProviderOptions,
  type DemoUser,
  demoUsers,
  startDemoIdentityProvider,
} from './demo-identity-provider.js';
export { type GroupMapping, isPortcullisGroup, mapIdpGroups } from './group-mapping.js';
export { IdpDiscovery, idTokenClockToleranceSeconds } from './idp-discovery.js';
export {
  apiTokenClockToleranceSeconds,
  defaultJwksCooldownSeconds,
  IdpJwtVerifier,
  type IdpJwtVerifierOptions,
  type InvalidTokenReason,
} from './idp-jwt-verifier.js';
export type { LoginFailureReason } from './login-failure.js';
export {
  conditionHolds,
  evaluateMapping,
  type MappingOutcome,
  type MappingSettings,
  mapPushedGroups,
  type PushedGroups,
} from './mapping-rules.js';
export {
  type BeginLoginInput,
  type BegunLogin,
  type CompletedLogin,
  defaultPendingLoginTtlSeconds,
  OidcLogin,
  type OidcLoginOptions,
  pendingLoginKind,
} from './oidc-login.js';
export {
  type SamlFailureReason,
  SamlLogin,
  type SamlLoginOptions,
  samlAssertionKind,
  samlRequestKind,
} from './saml-login.js';
export { type IdpMetadata, parseIdpMetadata, SamlMetadataSource } from './saml-metadata.js';
export { explainSignIn, mappingSettingsOf, type SignInExplanation } from './sign-in-explain.js';
