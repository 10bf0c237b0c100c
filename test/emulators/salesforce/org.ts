import type { SfField, SfObject } from './schema.ts';

/**
 * The emulated org's data and its DML rules: what Salesforce checks when a record is inserted or updated
 * (types, lengths, required fields, restricted picklists, writability), shared by the REST Collections and
 * the Bulk 2.0 paths so both reach the same state for the same input.
 */

export type SfValue = string | number | boolean | null;
export type SfRecord = Record<string, SfValue>;

export interface SfError {
  statusCode: string;
  message: string;
  fields: string[];
}

/** A value that cannot be read at all (wrong JSON type): Salesforce rejects the whole request. */
export class DeserializeError extends Error {
  readonly errorCode: string;
  constructor(errorCode: string, message: string) {
    super(message);
    this.errorCode = errorCode;
  }
}

export type UpsertOutcome = { ok: true; id: string; created: boolean } | { ok: false; errors: SfError[] };

/** A write the org would make, checked but not yet applied (allOrNone needs all checks before any write). */
export interface PlannedWrite {
  type: string;
  id: string;
  created: boolean;
  values: SfRecord;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:?\d{2})?$/;
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

export class Org {
  readonly objects = new Map<string, SfObject>();
  readonly records = new Map<string, Map<string, SfRecord>>();
  private seq = 0;
  readonly closedStatuses = new Set(['Closed']);

  constructor(objects: SfObject[]) {
    for (const o of objects) {
      this.objects.set(o.name, o);
      this.records.set(o.name, new Map());
    }
  }

  object(type: string): SfObject | undefined {
    return this.objects.get(type);
  }

  fieldOf(type: string, name: string): SfField | undefined {
    return this.objects.get(type)?.fields.find((f) => f.name.toLowerCase() === name.toLowerCase());
  }

  newId(type: string): string {
    const prefix = this.objects.get(type)?.keyPrefix ?? '001';
    this.seq += 1;
    return `${prefix}${String(this.seq).padStart(12, '0')}AAA`;
  }

  table(type: string): Map<string, SfRecord> {
    const t = this.records.get(type);
    if (!t) throw new DeserializeError('NOT_FOUND', `sObject type '${type}' is not supported.`);
    return t;
  }

  /** External-id lookups through an index (a real org indexes external ids; a scan makes 100k upserts O(n^2)). */
  private readonly extIndex = new Map<string, Map<string, Set<string>>>();

  private indexKey(type: string, fieldName: string): string {
    return `${type}.${fieldName.toLowerCase()}`;
  }

  private isIndexed(type: string, fieldName: string): boolean {
    const f = this.fieldOf(type, fieldName);
    return f !== undefined && (f.externalId || f.unique);
  }

  /** Brings the index up to date for one record (after any write, edit or delete). */
  reindex(type: string, id: string, before: SfRecord | undefined): void {
    const after = this.records.get(type)?.get(id);
    for (const f of this.objects.get(type)?.fields ?? []) {
      if (!(f.externalId || f.unique)) continue;
      const k = this.indexKey(type, f.name);
      let idx = this.extIndex.get(k);
      if (!idx) { idx = new Map(); this.extIndex.set(k, idx); }
      const old = before?.[f.name];
      if (old != null) idx.get(String(old).toLowerCase())?.delete(id);
      const now = after?.[f.name];
      if (now != null) {
        const v = String(now).toLowerCase();
        if (!idx.has(v)) idx.set(v, new Set());
        idx.get(v)!.add(id);
      }
    }
  }

  findByField(type: string, fieldName: string, value: SfValue): SfRecord[] {
    if (this.isIndexed(type, fieldName)) {
      const ids = this.extIndex.get(this.indexKey(type, fieldName))?.get(String(value).toLowerCase()) ?? new Set<string>();
      const t = this.table(type);
      return [...ids].map((id) => t.get(id)).filter((r): r is SfRecord => r !== undefined);
    }
    const out: SfRecord[] = [];
    for (const r of this.table(type).values()) {
      if (r[fieldName] != null && String(r[fieldName]).toLowerCase() === String(value).toLowerCase()) out.push(r);
    }
    return out;
  }

  /**
   * Reads a JSON value for a field the way the REST API deserialises it: a wrong JSON type fails the whole
   * request, a readable but invalid value fails the record.
   */
  coerceJson(f: SfField, v: unknown): SfValue {
    // Salesforce stores an empty string as null, whatever the field type.
    if (v === null || v === '') return null;
    switch (f.type) {
      case 'double': case 'int':
        if (typeof v === 'number') return v;
        if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
        throw new DeserializeError('JSON_PARSER_ERROR', `Cannot deserialize instance of double from VALUE_STRING value ${JSON.stringify(v)} for field ${f.name}`);
      case 'boolean':
        if (typeof v === 'boolean') return v;
        throw new DeserializeError('JSON_PARSER_ERROR', `Cannot deserialize instance of boolean from ${typeof v} value for field ${f.name}`);
      case 'date': case 'datetime':
        if (typeof v === 'string' && (f.type === 'date' ? DATE : DATETIME).test(v)) return v;
        throw new DeserializeError('JSON_PARSER_ERROR', `Cannot deserialize instance of ${f.type} from value ${JSON.stringify(v)} for field ${f.name}`);
      default:
        if (typeof v === 'string') return v;
        if (typeof v === 'number' || typeof v === 'boolean') return String(v);
        throw new DeserializeError('JSON_PARSER_ERROR', `Cannot deserialize instance of string from ${typeof v} value for field ${f.name}`);
    }
  }

  /** Reads a Bulk CSV cell: '' leaves the field as it is (undefined), '#N/A' sets null. */
  coerceCsv(f: SfField, cell: string): SfValue | undefined | SfError {
    if (cell === '') return undefined;
    if (cell === '#N/A') return null;
    switch (f.type) {
      case 'double': case 'int': {
        const n = Number(cell);
        return Number.isFinite(n) ? n : { statusCode: 'INVALID_TYPE_ON_FIELD_IN_RECORD', message: `${f.label}: value not of required type: ${cell}`, fields: [f.name] };
      }
      case 'boolean':
        if (/^(true|1)$/i.test(cell)) return true;
        if (/^(false|0)$/i.test(cell)) return false;
        return { statusCode: 'INVALID_TYPE_ON_FIELD_IN_RECORD', message: `${f.label}: value not of required type: ${cell}`, fields: [f.name] };
      case 'date': case 'datetime':
        return (f.type === 'date' ? DATE : DATETIME).test(cell) ? cell
          : { statusCode: 'INVALID_TYPE_ON_FIELD_IN_RECORD', message: `${f.label}: value not of required type: ${cell}`, fields: [f.name] };
      default:
        return cell;
    }
  }

  /** Field-level checks of one record's values (already coerced); `insert` adds the required-field check. */
  validate(type: string, values: SfRecord, existing: SfRecord | undefined): SfError[] {
    const o = this.objects.get(type)!;
    const errors: SfError[] = [];
    for (const [name, v] of Object.entries(values)) {
      const f = this.fieldOf(type, name)!;
      if (existing ? !f.updateable : !f.createable) {
        errors.push({ statusCode: 'INVALID_FIELD_FOR_INSERT_UPDATE', message: `Unable to create/update fields: ${f.name}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.`, fields: [f.name] });
        continue;
      }
      if (v === null) continue;
      if ((f.type === 'string' || f.type === 'email' || f.type === 'textarea' || f.type === 'picklist') && String(v).length > f.length) {
        errors.push({ statusCode: 'STRING_TOO_LONG', message: `${f.label}: data value too large: ${String(v).slice(0, 40)} (max length=${f.length})`, fields: [f.name] });
      } else if (f.type === 'picklist' && f.restrictedPicklist && !f.picklistValues.some((p) => p.active && p.value === v)) {
        errors.push({ statusCode: 'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST', message: `${f.label}: bad value for restricted picklist field: ${String(v)}`, fields: [f.name] });
      } else if (f.type === 'email' && !EMAIL.test(String(v))) {
        errors.push({ statusCode: 'INVALID_EMAIL_ADDRESS', message: `${f.label}: invalid email address: ${String(v)}`, fields: [f.name] });
      } else if (f.type === 'reference' && !this.isReference(f, String(v))) {
        errors.push({ statusCode: 'INVALID_CROSS_REFERENCE_KEY', message: `${f.label}: id value of incorrect type: ${String(v)}`, fields: [f.name] });
      }
    }
    const merged = { ...(existing ?? {}), ...values };
    const missing = o.fields.filter((f) => !f.nillable && f.createable && !f.defaultedOnCreate && (merged[f.name] === undefined || merged[f.name] === null || merged[f.name] === ''));
    if (missing.length > 0) {
      errors.push({ statusCode: 'REQUIRED_FIELD_MISSING', message: `Required fields are missing: [${missing.map((f) => f.name).join(', ')}]`, fields: missing.map((f) => f.name) });
    }
    return errors;
  }

  private isReference(f: SfField, v: string): boolean {
    return f.referenceTo.some((t) => this.records.get(t)?.has(v));
  }

  /** Plans an upsert of one record by external ID: which record it hits, or why it fails. */
  planUpsert(type: string, extField: string, extValue: SfValue, values: SfRecord): { plan: PlannedWrite } | { errors: SfError[] } {
    if (extValue === null || extValue === undefined || extValue === '') {
      return { errors: [{ statusCode: 'MISSING_ARGUMENT', message: `${extField} not specified`, fields: [] }] };
    }
    const hits = this.findByField(type, extField, extValue);
    if (hits.length > 1) {
      return { errors: [{ statusCode: 'DUPLICATE_EXTERNAL_ID', message: `${extField}: more than one record found for external id field: [${hits.map((h) => h.Id).join(', ')}]`, fields: [extField] }] };
    }
    const existing = hits[0];
    const errors = this.validate(type, values, existing);
    if (errors.length > 0) return { errors };
    const id = existing ? String(existing.Id) : this.newId(type);
    return { plan: { type, id, created: !existing, values: { ...values, [extField]: extValue } } };
  }

  planUpdate(type: string, id: string, values: SfRecord): { plan: PlannedWrite } | { errors: SfError[] } {
    const existing = this.records.get(type)?.get(id);
    if (!existing) return { errors: [{ statusCode: 'ENTITY_IS_DELETED', message: 'entity is deleted', fields: [] }] };
    const errors = this.validate(type, values, existing);
    return errors.length > 0 ? { errors } : { plan: { type, id, created: false, values } };
  }

  apply(w: PlannedWrite): void {
    const t = this.table(w.type);
    const now = new Date().toISOString().replace('Z', '+0000');
    const prev = t.get(w.id);
    const before = prev ? { ...prev } : undefined;
    const rec: SfRecord = prev ?? this.blank(w.type, w.id, now);
    Object.assign(rec, w.values);
    if (w.type === 'Contact') rec.Name = [rec.FirstName, rec.LastName].filter((x) => x != null && x !== '').join(' ');
    if (w.type === 'Case') rec.IsClosed = this.closedStatuses.has(String(rec.Status ?? ''));
    rec.LastModifiedDate = now;
    t.set(w.id, rec);
    this.reindex(w.type, w.id, before);
  }

  /** Deletes a record by Id, from whichever object holds it; false when none does. */
  remove(id: string): boolean {
    for (const [type, t] of this.records) {
      const rec = t.get(id);
      if (!rec) continue;
      t.delete(id);
      this.reindex(type, id, rec);
      return true;
    }
    return false;
  }

  /**
   * Changes a record without any API checks (an admin's edit in the UI). The org still keeps its system
   * fields: LastModifiedDate moves to now (unless the test sets it, to backdate a record) and a Case's
   * IsClosed follows its Status.
   */
  edit(type: string, id: string, values: SfRecord): void {
    const rec = this.table(type).get(id);
    if (!rec) throw new Error(`no ${type} ${id}`);
    const before = { ...rec };
    rec.LastModifiedDate = new Date().toISOString().replace('Z', '+0000');
    Object.assign(rec, values);
    if (type === 'Case') rec.IsClosed = this.closedStatuses.has(String(rec.Status ?? ''));
    this.reindex(type, id, before);
  }

  clear(): void {
    for (const t of this.records.values()) t.clear();
    this.extIndex.clear();
  }

  private blank(type: string, id: string, now: string): SfRecord {
    const rec: SfRecord = { Id: id, CreatedDate: now };
    for (const f of this.objects.get(type)!.fields) {
      if (!(f.name in rec)) rec[f.name] = f.type === 'boolean' ? false : null;
    }
    if (type === 'Case') {
      rec.CaseNumber = String(this.seq).padStart(8, '0');
      rec.Status = 'New';
    }
    return rec;
  }

  /** Inserts a record directly (test setup, e.g. Cases), bypassing the API and its budget. */
  insert(type: string, values: SfRecord): string {
    const id = this.newId(type);
    this.apply({ type, id, created: true, values });
    return id;
  }
}
