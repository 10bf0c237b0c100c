import { DeserializeError, type Org, type PlannedWrite, type SfError, type SfRecord } from './org.ts';

/**
 * sObject Collections: upsert by external ID, update by Id, delete by Id. A well-formed request answers 200
 * with one result per record in request order, even when records fail; allOrNone rolls every record back.
 */

export interface Reply {
  status: number;
  body: unknown;
}

export interface CollectionsFaults {
  /** External ids (or record Ids) whose next write fails with UNABLE_TO_LOCK_ROW, with how many times left. */
  locked: Map<string, number>;
}

const MAX_RECORDS = 200;

export function apiError(status: number, errorCode: string, message: string, fields?: string[]): Reply {
  return { status, body: [{ message, errorCode, ...(fields ? { fields } : {}) }] };
}

type Item = { ok: true; plan: PlannedWrite } | { ok: false; errors: SfError[] };

function lockError(): SfError {
  return { statusCode: 'UNABLE_TO_LOCK_ROW', message: 'unable to obtain exclusive access to this record or 1 records', fields: [] };
}

function takeLock(faults: CollectionsFaults, key: string): boolean {
  const left = faults.locked.get(key);
  if (!left) return false;
  if (left <= 1) faults.locked.delete(key); else faults.locked.set(key, left - 1);
  return true;
}

function parseBody(raw: string): { allOrNone: boolean; records: Array<Record<string, unknown>> } | Reply {
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    return apiError(400, 'JSON_PARSER_ERROR', 'Unexpected character in request body');
  }
  const b = body as { allOrNone?: unknown; records?: unknown };
  if (!b || !Array.isArray(b.records)) return apiError(400, 'INVALID_INPUT', 'records is required');
  if (b.records.length > MAX_RECORDS) return apiError(400, 'EXCEEDED_ID_LIMIT', `Record limit reached. cannot submit more than ${MAX_RECORDS} records into this call`);
  return { allOrNone: b.allOrNone === true, records: b.records as Array<Record<string, unknown>> };
}

/** The record's fields read through the object's schema; an unknown field or unreadable value fails the request. */
function readFields(org: Org, type: string, rec: Record<string, unknown>, skip: string[]): SfRecord {
  const values: SfRecord = {};
  for (const [k, v] of Object.entries(rec)) {
    if (k === 'attributes' || skip.some((x) => x.toLowerCase() === k.toLowerCase())) continue;
    const f = org.fieldOf(type, k);
    if (!f) throw new DeserializeError('INVALID_FIELD', `No such column '${k}' on sobject of type ${type}`);
    values[f.name] = org.coerceJson(f, v);
  }
  return values;
}

function finish(org: Org, items: Item[], allOrNone: boolean): Reply {
  const anyFailed = items.some((i) => !i.ok);
  if (allOrNone && anyFailed) {
    return {
      status: 200,
      body: items.map((i) => ({
        id: null, success: false,
        errors: i.ok ? [{ statusCode: 'ALL_OR_NONE_OPERATION_ROLLED_BACK', message: 'Record rolled back because not all records were valid and the request was using AllOrNone header', fields: [] }] : i.errors,
      })),
    };
  }
  return {
    status: 200,
    body: items.map((i) => {
      if (!i.ok) return { success: false, errors: i.errors };
      org.apply(i.plan);
      return { id: i.plan.id, success: true, errors: [], created: i.plan.created };
    }),
  };
}

export function upsertCollection(org: Org, faults: CollectionsFaults, type: string, extField: string, raw: string): Reply {
  const obj = org.object(type);
  if (!obj) return apiError(404, 'NOT_FOUND', 'The requested resource does not exist');
  const ext = org.fieldOf(type, extField);
  if (!ext || !(ext.externalId || ext.name === 'Id')) {
    return apiError(400, 'INVALID_FIELD', `Field ${extField} is not an External ID or indexed field for ${type}`);
  }
  const parsed = parseBody(raw);
  if ('status' in parsed) return parsed;
  const counts = new Map<string, number>();
  const readRecords: Array<{ extValue: string; values: SfRecord }> = [];
  try {
    for (const rec of parsed.records) {
      const attrs = rec.attributes as { type?: unknown } | undefined;
      if (!attrs || typeof attrs.type !== 'string') return apiError(400, 'INVALID_TYPE', 'Must send a concrete entity type.');
      if (attrs.type !== type) return apiError(400, 'INVALID_TYPE', `All records must be of type ${type} for this upsert: ${attrs.type}`);
      const extRaw = Object.entries(rec).find(([k]) => k.toLowerCase() === ext.name.toLowerCase())?.[1];
      const extValue = extRaw == null ? '' : String(org.coerceJson(ext, extRaw));
      readRecords.push({ extValue, values: readFields(org, type, rec, Object.keys(rec).filter((k) => k.toLowerCase() === ext.name.toLowerCase())) });
      counts.set(extValue.toLowerCase(), (counts.get(extValue.toLowerCase()) ?? 0) + 1);
    }
  } catch (err) {
    if (err instanceof DeserializeError) return apiError(400, err.errorCode, err.message);
    throw err;
  }
  const items: Item[] = readRecords.map(({ extValue, values }) => {
    if (extValue !== '' && (counts.get(extValue.toLowerCase()) ?? 0) > 1) {
      return { ok: false, errors: [{ statusCode: 'DUPLICATE_VALUE', message: `Duplicate external id specified: ${extValue}`, fields: [ext.name] }] };
    }
    if (takeLock(faults, extValue)) return { ok: false, errors: [lockError()] };
    const r = org.planUpsert(type, ext.name, extValue, values);
    return 'plan' in r ? { ok: true, plan: r.plan } : { ok: false, errors: r.errors };
  });
  return finish(org, items, parsed.allOrNone);
}

export function updateCollection(org: Org, faults: CollectionsFaults, raw: string): Reply {
  const parsed = parseBody(raw);
  if ('status' in parsed) return parsed;
  const items: Item[] = [];
  try {
    for (const rec of parsed.records) {
      const type = (rec.attributes as { type?: unknown } | undefined)?.type;
      if (typeof type !== 'string' || !org.object(type)) return apiError(400, 'INVALID_TYPE', 'Must send a concrete entity type.');
      // Field names are case-insensitive (jsforce sends `id`).
      const idValue = Object.entries(rec).find(([k]) => k.toLowerCase() === 'id')?.[1];
      const id = typeof idValue === 'string' ? idValue : '';
      const values = readFields(org, type, rec, ['Id']);
      if (!id) { items.push({ ok: false, errors: [{ statusCode: 'MISSING_ARGUMENT', message: 'Id not specified in an update call', fields: [] }] }); continue; }
      if (takeLock(faults, id)) { items.push({ ok: false, errors: [lockError()] }); continue; }
      const r = org.planUpdate(type, id, values);
      items.push('plan' in r ? { ok: true, plan: r.plan } : { ok: false, errors: r.errors });
    }
  } catch (err) {
    if (err instanceof DeserializeError) return apiError(400, err.errorCode, err.message);
    throw err;
  }
  return finish(org, items, parsed.allOrNone);
}

export function deleteCollection(org: Org, ids: string[], allOrNone: boolean): Reply {
  if (ids.length > MAX_RECORDS) return apiError(400, 'EXCEEDED_ID_LIMIT', `Record limit reached. cannot submit more than ${MAX_RECORDS} records into this call`);
  const found = ids.map((id) => [...org.records.values()].some((t) => t.has(id)));
  if (allOrNone && found.some((f) => !f)) {
    return { status: 200, body: ids.map((id, i) => ({ id, success: false, errors: [found[i] ? { statusCode: 'ALL_OR_NONE_OPERATION_ROLLED_BACK', message: 'Record rolled back', fields: [] } : { statusCode: 'ENTITY_IS_DELETED', message: 'entity is deleted', fields: [] }] })) };
  }
  return {
    status: 200,
    body: ids.map((id, i) => {
      if (!found[i] || !org.remove(id)) return { id, success: false, errors: [{ statusCode: 'ENTITY_IS_DELETED', message: 'entity is deleted', fields: [] }] };
      return { id, success: true, errors: [] };
    }),
  };
}
