/** Quoting for identifiers and literals that come from configuration, never from data. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A possibly schema-qualified relation name: `a.b` -> "a"."b"; an unqualified one gets `defaultSchema`. */
export function quoteRelation(name: string, defaultSchema: string): string {
  const parts = name.split('.');
  if (parts.length > 2 || parts.some((p) => p === '')) throw new Error(`not a relation name: ${name}`);
  return (parts.length === 1 ? [defaultSchema, name] : parts).map(quoteIdent).join('.');
}

export function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
