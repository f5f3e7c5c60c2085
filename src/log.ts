import type { LogLevel } from './config.js';

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Field names whose values never reach a log line, whatever the caller passes. */
const SECRET_FIELDS =
  /^(api-?key|api-?secret|secret|signature|listen-?key|x-mbx-apikey|x-mbx-apisecret|authorization|password|token)$/i;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  level: LogLevel;
  /** Where each JSON line goes (stdout by default; tests capture it). */
  write?: (line: string) => void;
  /** Values that must never appear in a line (credentials seen at run time); scrubbed if they do. */
  secrets?: Set<string>;
}

/**
 * JSON-lines logger. Credentials are kept out twice: by field name (`apiKey`, `secret`,
 * `signature`, `listenKey`, …) and by scrubbing every registered secret value from the final
 * line, so a key pasted into some error text still cannot leak.
 */
export function createLogger(options: LoggerOptions, base: Record<string, unknown> = {}): Logger {
  const min = LEVELS[options.level];
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const secrets = options.secrets;
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (LEVELS[level] < min) return;
    let line = JSON.stringify(
      { time: new Date().toISOString(), level, msg, ...base, ...fields },
      redact,
    );
    if (secrets && secrets.size > 0) {
      for (const s of secrets)
        if (s.length >= 4 && line.includes(s)) line = line.split(s).join('[redacted]');
    }
    write(line);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(options, { ...base, ...fields }),
  };
}

function redact(key: string, value: unknown): unknown {
  if (key !== '' && SECRET_FIELDS.test(key)) return '[redacted]';
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack };
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** A logger that drops everything (library defaults, some tests). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
