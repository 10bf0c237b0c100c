/**
 * `source.sql` as written in a mapping, made safe to embed: `${VAR}` placeholders become bind parameters
 * (never pasted into the SQL text), and the text must be one SELECT that stays inside the parentheses the
 * planner wraps it in. A small lexer finds what is code and what is a string literal, quoted identifier,
 * dollar-quoted body or comment, so that a `;` or `)` inside those is left alone.
 */

/** A placeholder in the stored text: `\u0000<n>\u0000`, n from 1. PostgreSQL refuses NUL, so one that escapes fails loudly. */
const MARKER = /\u0000(\d+)\u0000/g;

const ENV_NAME = /^\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}/;

export interface BoundSourceSql {
  /** The SQL with one marker per placeholder (render it with renderSourceSql). */
  text: string;
  /** The placeholders' values, in marker order; always sent as bind parameters. */
  params: string[];
  /** Problems, each at a character offset of the SQL as written. */
  problems: Array<{ offset: number; message: string; hint?: string }>;
}

/**
 * Replaces every `${VAR}` / `${VAR:-default}` in code with a marker and collects its value. A placeholder
 * that is a whole string literal (`'${REGION}'`, as mappings were written while values were pasted) is the
 * parameter itself; one anywhere else inside a literal, identifier or dollar-quoted body is a problem, since a
 * bind parameter cannot be part of a token. A placeholder in a comment is left as text. A `;` (other than
 * trailing ones) or an unbalanced `)` is a problem: the source must be one SELECT.
 */
export function bindSourceSql(sql: string, env: NodeJS.ProcessEnv): BoundSourceSql {
  const params: string[] = [];
  const problems: BoundSourceSql['problems'] = [];
  let out = '';
  let depth = 0;
  let i = 0;
  const body = sql.replace(/[;\s]*$/, '');
  const placeholder = (at: number): { length: number; value: string } | null => {
    const m = ENV_NAME.exec(body.slice(at));
    if (!m) return null;
    const v = env[m[1]!];
    let value = v !== undefined && v !== '' ? v : m[2];
    if (value === undefined) {
      problems.push({ offset: at, message: `environment variable ${m[1]} is not set`, hint: `export ${m[1]}=... (it is sent to the database as a bind parameter)` });
      value = '';
    }
    return { length: m[0].length, value };
  };
  const bind = (value: string) => {
    params.push(value);
    out += `\u0000${params.length}\u0000`;
  };
  /** Copies body[i..end) to out, refusing placeholders inside it (a literal, identifier or dollar body). */
  const quoted = (end: number, what: string) => {
    const text = body.slice(i, end);
    const inside = text.search(/\$\{[A-Z_]/);
    if (inside >= 0) {
      problems.push({ offset: i + inside, message: `\${...} inside a ${what}: it is sent as a bind parameter, which cannot be part of a ${what}`, hint: `write it on its own, e.g. WHERE region = \${REGION} or WHERE name LIKE \${PREFIX} || '%'` });
    }
    out += text;
    i = end;
  };
  while (i < body.length) {
    const c = body[i]!;
    const next = body[i + 1];
    if (c === '-' && next === '-') {
      const end = body.indexOf('\n', i);
      out += body.slice(i, end < 0 ? body.length : end);
      i = end < 0 ? body.length : end;
    } else if (c === '/' && next === '*') {
      let nest = 0;
      let j = i;
      do {
        if (body.startsWith('/*', j)) { nest++; j += 2; } else if (body.startsWith('*/', j)) { nest--; j += 2; } else j++;
      } while (nest > 0 && j < body.length);
      out += body.slice(i, j);
      i = j;
    } else if (c === "'") {
      // E'...' strings take backslash escapes; '' is a quote in both kinds.
      const escapes = i > 0 && /[eE]/.test(body[i - 1]!) && !/[A-Za-z0-9_]/.test(body[i - 2] ?? ' ');
      let j = i + 1;
      while (j < body.length) {
        if (escapes && body[j] === '\\') j += 2;
        else if (body[j] === "'" && body[j + 1] === "'") j += 2;
        else if (body[j] === "'") break;
        else j++;
      }
      const whole = placeholder(i + 1);
      if (whole && i + 1 + whole.length === j && !escapes) {
        bind(whole.value);
        i = j + 1;
      } else quoted(Math.min(j + 1, body.length), 'string literal');
    } else if (c === '"') {
      const j = body.indexOf('"', i + 1);
      quoted(j < 0 ? body.length : j + 1, 'quoted identifier');
    } else if (c === '$' && next === '{') {
      const p = placeholder(i);
      if (p) {
        bind(p.value);
        i += p.length;
      } else {
        out += c;
        i++;
      }
    } else if (c === '$' && /[A-Za-z_$]/.test(next ?? '') && !/[A-Za-z0-9_]/.test(body[i - 1] ?? ' ')) {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(body.slice(i));
      if (tag) {
        const close = body.indexOf(tag[0], i + tag[0].length);
        quoted(close < 0 ? body.length : close + tag[0].length, 'dollar-quoted string');
      } else {
        out += c;
        i++;
      }
    } else if (c === '$' && /[0-9]/.test(next ?? '') && !/[A-Za-z0-9_$]/.test(body[i - 1] ?? ' ')) {
      problems.push({ offset: i, message: `positional parameter ${/^\$[0-9]+/.exec(body.slice(i))![0]} in source.sql`, hint: 'segsync numbers the parameters itself: write ${VAR} (bound from the environment) instead' });
      out += c;
      i++;
    } else {
      if (c === '(') depth++;
      if (c === ')' && --depth < 0) {
        problems.push({ offset: i, message: "a ')' closes more than the query opened", hint: 'source.sql must be one SELECT; segsync reads it as a subquery' });
        depth = 0;
      }
      if (c === ';') problems.push({ offset: i, message: 'source.sql holds more than one statement', hint: 'give one SELECT (a trailing ; is fine); segsync runs nothing else on the source connection' });
      out += c;
      i++;
    }
  }
  return { text: out, params, problems };
}

/** The stored text with its markers numbered as `$<offset + n>`: after a statement's own `offset` parameters. */
export function renderSourceSql(text: string, offset: number): string {
  return text.replace(MARKER, (_m, n: string) => `$${offset + Number(n)}`);
}

/** How many markers the stored text holds. */
export function countMarkers(text: string): number {
  return text.match(MARKER)?.length ?? 0;
}
