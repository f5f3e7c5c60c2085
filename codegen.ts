import type { CodegenConfig } from '@graphql-codegen/cli';

/**
 * `npm run codegen`: types for the example client, from the checked-in schema.graphql and the
 * operations written in examples/typed-client. The output is committed; CI regenerates it and
 * fails when it differs.
 */
const config: CodegenConfig = {
  overwrite: true,
  schema: 'schema.graphql',
  documents: ['examples/typed-client/**/*.ts', '!examples/typed-client/generated/**'],
  ignoreNoDocuments: false,
  generates: {
    'examples/typed-client/generated/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        // Operations as typed strings: graphql-ws sends a string, no graphql `print` needed.
        documentMode: 'string',
        // NodeNext: relative imports with `.js` (stack-notes, trap 10).
        emitLegacyCommonJSImports: false,
        useTypeImports: true,
        enumType: 'string-literal',
        strictScalars: true,
        scalars: { Decimal: 'string', Long: 'number', Timestamp: 'number' },
      },
    },
  },
};

export default config;
