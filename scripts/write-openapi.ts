// Regenerates openapi.json from the route schemas: `npm run openapi`.
import { writeFileSync } from 'node:fs';
import { openApiDocument, serialiseOpenApi } from '../src/http/openapi.js';

writeFileSync(new URL('../openapi.json', import.meta.url), serialiseOpenApi(await openApiDocument()));
process.stdout.write('openapi.json written\n');
