/**
 * Works around a V8 abort ("Fatal error … unreachable code" in the deoptimiser) seen on Node 20
 * under load when TurboFan inlines JavaScript→WebAssembly calls into cedar-wasm: the process dies.
 * Turning that one optimisation off costs little (decisions stay well under a millisecond) and is
 * done before any policy is evaluated, so every process that decides — server, CLI, tests,
 * benchmarks — is protected. See docs/benchmarks.md for how it was found.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--no-turbo-inline-js-wasm-calls');
