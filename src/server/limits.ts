import {
  GraphQLError,
  Kind,
  parse,
  type ASTVisitor,
  type FragmentDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';

/** Operation limits, enforced on every transport (HTTP, SSE, WebSocket) through envelop. */
export interface OperationLimits {
  /** deepest selection nesting (Binance data is at most 4 levels deep) */
  maxDepth: number;
  /** aliased fields in one operation (aliases multiply work) */
  maxAliases: number;
  /** lexical tokens in one document (bounds parse time) */
  maxTokens: number;
  /** estimated cost: one per field, fragments expanded */
  maxCost: number;
}

export const DEFAULT_LIMITS: OperationLimits = {
  maxDepth: 10,
  maxAliases: 30,
  maxTokens: 2_000,
  maxCost: 300,
};

function limitError(message: string, limit: string, max: number): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', limit, max } });
}

/**
 * The limits as one envelop plugin: a token cap on parsing (graphql-js stops parsing at
 * `maxTokens`) and depth, alias and cost rules added to validation. A rejected operation fails
 * alone with `extensions.code` BAD_USER_INPUT and `extensions.limit` naming the limit.
 */
export function useOperationLimits(limits: OperationLimits = DEFAULT_LIMITS): Plugin {
  return {
    onParse({ setParseFn }) {
      setParseFn((source, options) => {
        try {
          return parse(source, { ...options, maxTokens: limits.maxTokens });
        } catch (err) {
          if (err instanceof GraphQLError && /more th[ae][nt] \d+ tokens/.test(err.message)) {
            throw limitError(
              `The document has more than ${limits.maxTokens} tokens.`,
              'maxTokens',
              limits.maxTokens,
            );
          }
          throw err;
        }
      });
    },
    onValidate({ addValidationRule }) {
      addValidationRule((ctx: ValidationContext) => limitsRule(ctx, limits));
    },
  };
}

function limitsRule(ctx: ValidationContext, limits: OperationLimits): ASTVisitor {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of ctx.getDocument().definitions) {
    if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  }
  return {
    OperationDefinition(node) {
      const m = measure(node.selectionSet, fragments);
      if (m.depth > limits.maxDepth) {
        ctx.reportError(
          limitError(
            `The operation is nested ${m.depth} levels deep; the limit is ${limits.maxDepth}.`,
            'maxDepth',
            limits.maxDepth,
          ),
        );
      }
      if (m.aliases > limits.maxAliases) {
        ctx.reportError(
          limitError(
            `The operation uses ${m.aliases} aliases; the limit is ${limits.maxAliases}.`,
            'maxAliases',
            limits.maxAliases,
          ),
        );
      }
      if (m.cost > limits.maxCost) {
        ctx.reportError(
          limitError(
            `The operation costs ${m.cost}; the limit is ${limits.maxCost}.`,
            'maxCost',
            limits.maxCost,
          ),
        );
      }
    },
  };
}

interface Measure {
  depth: number;
  aliases: number;
  cost: number;
}

/** Depth, aliases and cost with fragments expanded; a fragment cycle stops at the visited set. */
function measure(
  set: SelectionSetNode,
  fragments: Map<string, FragmentDefinitionNode>,
  visiting = new Set<string>(),
): Measure {
  let depth = 0;
  let aliases = 0;
  let cost = 0;
  for (const sel of set.selections) {
    let child: Measure | undefined;
    if (sel.kind === Kind.FIELD) {
      cost += 1;
      if (sel.alias) aliases += 1;
      child = sel.selectionSet ? measure(sel.selectionSet, fragments, visiting) : undefined;
      depth = Math.max(depth, 1 + (child?.depth ?? 0));
    } else if (sel.kind === Kind.INLINE_FRAGMENT) {
      child = measure(sel.selectionSet, fragments, visiting);
      depth = Math.max(depth, child.depth);
    } else {
      const name = sel.name.value;
      const frag = fragments.get(name);
      if (!frag || visiting.has(name)) continue;
      visiting.add(name);
      child = measure(frag.selectionSet, fragments, visiting);
      visiting.delete(name);
      depth = Math.max(depth, child.depth);
    }
    if (child) {
      aliases += child.aliases;
      cost += child.cost;
    }
  }
  return { depth, aliases, cost };
}
