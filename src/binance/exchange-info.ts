import { badInput } from '../errors.js';
import type { Logger } from '../log.js';
import type { BinanceRest } from './rest.js';

/** One tradable contract, as the schema's `SymbolInfo` shows it. */
export interface SymbolInfo {
  symbol: string;
  status: string;
  contractType: string;
  baseAsset: string;
  quoteAsset: string;
  pricePrecision: number;
  quantityPrecision: number;
  /** from PRICE_FILTER: the real price step (pricePrecision is not, says Binance) */
  tickSize: string;
  /** from LOT_SIZE */
  stepSize: string;
}

interface RawFilter {
  filterType?: unknown;
  tickSize?: unknown;
  stepSize?: unknown;
}

interface RawSymbol {
  symbol?: unknown;
  status?: unknown;
  contractType?: unknown;
  baseAsset?: unknown;
  quoteAsset?: unknown;
  pricePrecision?: unknown;
  quantityPrecision?: unknown;
  filters?: unknown;
}

/**
 * The cached `exchangeInfo` symbol list: every subscription's symbol is checked here before any
 * upstream stream is opened, because Binance acknowledges unknown symbols and then stays silent.
 * Refreshed every `refreshMs`; a failed refresh keeps the last good list.
 */
export class ExchangeInfo {
  private symbols = new Map<string, SymbolInfo>();
  private loadedAt = 0;
  private loading: Promise<void> | undefined;

  constructor(
    private readonly rest: BinanceRest,
    private readonly logger: Logger,
    private readonly refreshMs = 5 * 60_000,
  ) {}

  /** The list, loading it on first use and refreshing it when stale. */
  async all(): Promise<SymbolInfo[]> {
    await this.ensure();
    return [...this.symbols.values()];
  }

  /**
   * The canonical (upper-case) symbol when it exists and is TRADING; otherwise a
   * BAD_USER_INPUT error that says which.
   */
  async validate(input: string): Promise<SymbolInfo> {
    await this.ensure();
    const symbol = input.trim().toUpperCase();
    const info = this.symbols.get(symbol);
    if (!info) throw badInput(`Unknown symbol "${input}": not a Binance USDⓈ-M futures symbol.`);
    if (info.status !== 'TRADING') {
      throw badInput(`Symbol ${symbol} is not trading (status ${info.status}).`);
    }
    return info;
  }

  private async ensure(): Promise<void> {
    const stale = Date.now() - this.loadedAt > this.refreshMs;
    if (this.symbols.size > 0 && !stale) return;
    this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    });
    if (this.symbols.size === 0) await this.loading;
    else this.loading.catch(() => undefined);
  }

  private async load(): Promise<void> {
    try {
      const body = (await this.rest.get('/fapi/v1/exchangeInfo', {}, 1)) as { symbols?: unknown };
      const list = Array.isArray(body.symbols) ? (body.symbols as RawSymbol[]) : [];
      const next = new Map<string, SymbolInfo>();
      for (const raw of list) {
        const info = toSymbolInfo(raw);
        if (info) next.set(info.symbol, info);
      }
      this.symbols = next;
      this.loadedAt = Date.now();
      this.logger.debug('exchangeInfo loaded', { symbols: next.size });
    } catch (err) {
      this.logger.warn('exchangeInfo refresh failed', {
        error: err instanceof Error ? err.message : String(err),
      });
      if (this.symbols.size === 0) throw err;
    }
  }
}

function toSymbolInfo(raw: RawSymbol): SymbolInfo | undefined {
  if (typeof raw.symbol !== 'string') return undefined;
  const filters = Array.isArray(raw.filters) ? (raw.filters as RawFilter[]) : [];
  const price = filters.find((f) => f.filterType === 'PRICE_FILTER');
  const lot = filters.find((f) => f.filterType === 'LOT_SIZE');
  const str = (v: unknown, d: string): string => (typeof v === 'string' ? v : d);
  const int = (v: unknown): number => (typeof v === 'number' ? v : 0);
  return {
    symbol: raw.symbol,
    status: str(raw.status, 'UNKNOWN'),
    contractType: str(raw.contractType, ''),
    baseAsset: str(raw.baseAsset, ''),
    quoteAsset: str(raw.quoteAsset, ''),
    pricePrecision: int(raw.pricePrecision),
    quantityPrecision: int(raw.quantityPrecision),
    tickSize: str(price?.tickSize, '0'),
    stepSize: str(lot?.stepSize, '0'),
  };
}
