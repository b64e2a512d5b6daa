/**
 * Federation with OpenID Connect identity providers: browser sign-in, IdP-issued JWTs as API
 * bearer tokens, group mapping, and the built-in demo identity provider. See README.md here.
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
  type BeginLoginInput,
  type BegunLogin,
  type CompletedLogin,
  defaultPendingLoginTtlSeconds,
  OidcLogin,
  type OidcLoginOptions,
  pendingLoginKind,
} from './oidc-login.js';
