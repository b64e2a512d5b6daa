/**
 * The demo identity provider's people. DEMO ONLY: these passwords are published here and in the
 * documentation on purpose so anyone can try `npm start`. Never reuse them, and never point a
 * production Portcullis at the demo identity provider.
 *
 * | user  | password              | groups      |
 * |-------|-----------------------|-------------|
 * | alice | alice-demo-password   | engineering |
 * | bob   | bob-demo-password     | sre         |
 * | carol | carol-demo-password   | dba         |
 * | dave  | dave-demo-password    | admins      |
 */

export interface DemoUser {
  /** Also the OIDC `sub`: stable, so Portcullis principals are `<idp>:alice` and so on. */
  readonly username: string;
  /** Public demo password. */
  readonly password: string;
  readonly name: string;
  readonly email: string;
  /** Groups as the IdP asserts them in the `groups` claim. */
  readonly groups: readonly string[];
}

export const demoUsers: readonly DemoUser[] = Object.freeze([
  {
    username: 'alice',
    password: 'alice-demo-password',
    name: 'Alice Anders',
    email: 'alice@demo.portcullis.test',
    groups: ['engineering'],
  },
  {
    username: 'bob',
    password: 'bob-demo-password',
    name: 'Bob Brandt',
    email: 'bob@demo.portcullis.test',
    groups: ['sre'],
  },
  {
    username: 'carol',
    password: 'carol-demo-password',
    name: 'Carol Chen',
    email: 'carol@demo.portcullis.test',
    groups: ['dba'],
  },
  {
    username: 'dave',
    password: 'dave-demo-password',
    name: 'Dave Duarte',
    email: 'dave@demo.portcullis.test',
    groups: ['admins'],
  },
]);
