/**
 * Provisioners by resource kind. The composition root registers one instance per kind; a new
 * kind of target is a new provisioner file plus one `register` line there.
 *
 * @example
 * const provisioners = new ProvisionerRegistry([new PostgresProvisioner({ installation }), new TokenProvisioner()]);
 * provisioners.assertCovers(config.resources.values()); // at start-up: every resource has one
 * await provisioners.get(resource.kind).apply(context);
 */
import type { Provisioner } from '../app/ports.js';
import { PortcullisError } from '../core/errors.js';
import type { ResourceDefinition } from '../core/resource.js';

export class ProvisionerRegistry {
  readonly #byKind = new Map<string, Provisioner>();

  constructor(provisioners: Iterable<Provisioner> = []) {
    for (const provisioner of provisioners) this.register(provisioner);
  }

  /** Adds a provisioner; registering a kind twice is a wiring mistake and throws. */
  register(provisioner: Provisioner): this {
    if (this.#byKind.has(provisioner.kind)) {
      throw new Error(`A provisioner for kind "${provisioner.kind}" is already registered`);
    }
    this.#byKind.set(provisioner.kind, provisioner);
    return this;
  }

  /** The provisioner for `kind`; throws `config_invalid` naming the registered kinds when there is none. */
  get(kind: string): Provisioner {
    const provisioner = this.#byKind.get(kind);
    if (!provisioner) {
      throw new PortcullisError(
        'config_invalid',
        `No provisioner is registered for resource kind "${kind}" (registered: ${this.kinds().join(', ') || 'none'})`,
        { kind },
      );
    }
    return provisioner;
  }

  has(kind: string): boolean {
    return this.#byKind.has(kind);
  }

  kinds(): string[] {
    return [...this.#byKind.keys()].sort();
  }

  /** Throws, listing every offender, if a resource's kind has no provisioner (call at start-up). */
  assertCovers(resources: Iterable<ResourceDefinition>): void {
    const missing = [...resources].filter((resource) => !this.has(resource.kind));
    if (missing.length > 0) {
      throw new PortcullisError(
        'config_invalid',
        `No provisioner for ${missing.map((r) => `resource ${r.id} (kind "${r.kind}")`).join(', ')}; registered: ${this.kinds().join(', ') || 'none'}`,
        { resources: missing.map((r) => r.id) },
      );
    }
  }

  /** Closes every provisioner (their pools and connections), even if one of them fails. */
  async close(): Promise<void> {
    const results = await Promise.allSettled([...this.#byKind.values()].map((p) => p.close()));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
  }
}
