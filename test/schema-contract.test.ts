import { readFileSync } from 'node:fs';
import {
  buildSchema,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  isScalarType,
  isUnionType,
  lexicographicSortSchema,
  printSchema,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { schema } from '../src/schema/schema.js';

// A copy of the project's binding GraphQL contract (shared/contract.graphql).
const contract = buildSchema(
  readFileSync(new URL('./fixtures/contract.graphql', import.meta.url), 'utf8'),
);

describe('schema', () => {
  it('contains every type, field, argument and enum value of the contract with the same types', () => {
    const problems: string[] = [];
    for (const type of Object.values(contract.getTypeMap())) {
      if (type.name.startsWith('__')) continue;
      const ours = schema.getType(type.name);
      if (!ours) {
        problems.push(`missing type ${type.name}`);
        continue;
      }
      if (isScalarType(type) && !isScalarType(ours)) problems.push(`${type.name} is not a scalar`);
      if (isEnumType(type)) {
        if (!isEnumType(ours)) problems.push(`${type.name} is not an enum`);
        else
          for (const v of type.getValues())
            if (!ours.getValue(v.name)) problems.push(`missing enum value ${type.name}.${v.name}`);
      }
      if (isUnionType(type)) {
        if (!isUnionType(ours)) problems.push(`${type.name} is not a union`);
        else {
          const members = ours.getTypes().map((t) => t.name);
          for (const m of type.getTypes())
            if (!members.includes(m.name)) problems.push(`${type.name} lacks ${m.name}`);
        }
      }
      if (isObjectType(type) || isInterfaceType(type) || isInputObjectType(type)) {
        if (!(isObjectType(ours) || isInterfaceType(ours) || isInputObjectType(ours))) {
          problems.push(`${type.name} has another kind`);
          continue;
        }
        const fields = ours.getFields();
        for (const field of Object.values(type.getFields())) {
          const mine = fields[field.name];
          if (!mine) {
            problems.push(`missing field ${type.name}.${field.name}`);
            continue;
          }
          if (String(mine.type) !== String(field.type)) {
            problems.push(
              `${type.name}.${field.name}: ${String(mine.type)} instead of ${String(field.type)}`,
            );
          }
          if ('args' in field && 'args' in mine) {
            for (const arg of field.args) {
              const a = mine.args.find((x) => x.name === arg.name);
              if (!a) problems.push(`missing argument ${type.name}.${field.name}(${arg.name})`);
              else {
                if (String(a.type) !== String(arg.type))
                  problems.push(`${type.name}.${field.name}(${arg.name}) type`);
                if (a.defaultValue !== arg.defaultValue)
                  problems.push(`${type.name}.${field.name}(${arg.name}) default`);
              }
            }
          }
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('schema.graphql is the printed schema', () => {
    const file = readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8');
    expect(file).toBe(`${printSchema(lexicographicSortSchema(schema))}\n`);
  });
});
