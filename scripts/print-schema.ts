/**
 * Prints the Pothos schema to schema.graphql, or with --check fails when the checked-in file
 * differs from what the code builds (the schema is a reviewed artifact).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { lexicographicSortSchema, printSchema } from 'graphql';
import { schema } from '../src/schema/schema.js';

const file = new URL('../schema.graphql', import.meta.url);
const printed = `${printSchema(lexicographicSortSchema(schema))}\n`;
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    // missing file: reported below
  }
  if (current !== printed) {
    process.stderr.write(
      'schema.graphql differs from the schema in src/: run `npm run schema` and commit it.\n',
    );
    process.exit(1);
  }
} else {
  writeFileSync(file, printed);
  process.stdout.write('wrote schema.graphql\n');
}
