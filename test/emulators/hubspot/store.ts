/**
 * The emulator's CRM data: property definitions per object type and the records themselves, with HubSpot's
 * rules for values (everything is stored and returned as a string; numbers, dates, datetimes, booleans and
 * enumerations are checked and normalised the way the real API does).
 */

export interface PropertyOption { label: string; value: string; hidden: boolean; displayOrder: number }

export interface PropertyDef {
  name: string;
  label: string;
  type: 'string' | 'number' | 'date' | 'datetime' | 'enumeration' | 'bool';
  fieldType: string;
  groupName: string;
  description: string;
  options: PropertyOption[];
  hasUniqueValue: boolean;
  calculated: boolean;
  readOnlyValue: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface CrmRecord {
  id: string;
  properties: Record<string, string>;
  createdAt: string;
  updatedAt: string;
  archived: boolean;
}

export interface ValueProblem { code: string; message: string; property: string }

const TYPE_ALIASES: Record<string, string> = { '0-1': 'contacts', '0-2': 'companies', '0-5': 'tickets', contact: 'contacts', company: 'companies', ticket: 'tickets' };

export function canonicalType(objectType: string): string {
  return TYPE_ALIASES[objectType] ?? objectType;
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

function def(name: string, type: PropertyDef['type'], extra: Partial<PropertyDef> = {}): PropertyDef {
  const now = new Date(0).toISOString();
  const fieldType = type === 'enumeration' ? 'select' : type === 'bool' ? 'booleancheckbox' : type === 'number' ? 'number' : type === 'string' ? 'text' : 'date';
  return { name, label: name, type, fieldType, groupName: 'contactinformation', description: '', options: [], hasUniqueValue: false, calculated: false, readOnlyValue: false, createdAt: now, updatedAt: now, ...extra };
}

function options(values: string[]): PropertyOption[] {
  return values.map((v, i) => ({ label: v, value: v, hidden: false, displayOrder: i }));
}

/** The built-in properties every portal has (a useful subset), including read-only and calculated ones. */
function defaultProperties(type: string): PropertyDef[] {
  const common = [
    def('hs_object_id', 'number', { hasUniqueValue: true, readOnlyValue: true }),
    def('createdate', 'datetime', { readOnlyValue: true }),
    def('hs_lastmodifieddate', 'datetime', { readOnlyValue: true }),
  ];
  if (type === 'contacts') {
    return [...common, def('email', 'string'), def('firstname', 'string'), def('lastname', 'string'),
      def('lifecyclestage', 'enumeration', { options: options(['subscriber', 'lead', 'customer', 'evangelist', 'other']) }),
      def('num_associated_deals', 'number', { calculated: true, readOnlyValue: true })];
  }
  if (type === 'companies') return [...common, def('name', 'string'), def('domain', 'string')];
  if (type === 'tickets') {
    return [...common, def('subject', 'string'), def('content', 'string'), def('hs_pipeline', 'string'), def('hs_pipeline_stage', 'enumeration', { options: options(['1', '2', '3', '4']) }),
      def('hs_ticket_priority', 'enumeration', { options: options(['LOW', 'MEDIUM', 'HIGH', 'URGENT']) })];
  }
  return common;
}

export class ObjectTypeStore {
  readonly type: string;
  readonly properties = new Map<string, PropertyDef>();
  readonly records = new Map<string, CrmRecord>();
  /** property -> value -> record id, for properties with unique values (and contacts' email). */
  private readonly unique = new Map<string, Map<string, string>>();
  private nextId: () => string;

  constructor(type: string, nextId: () => string, props?: PropertyDef[]) {
    this.type = type;
    this.nextId = nextId;
    for (const p of props ?? defaultProperties(type)) this.properties.set(p.name, p);
  }

  addProperty(p: PropertyDef): void {
    this.properties.set(p.name, p);
  }

  /** A property that may serve as idProperty: unique values (HubSpot also accepts email for contacts). */
  isIdProperty(name: string): boolean {
    if (this.type === 'contacts' && name === 'email') return true;
    const p = this.properties.get(name);
    return p !== undefined && p.hasUniqueValue;
  }

  findBy(property: string, value: string): CrmRecord | undefined {
    if (property === 'hs_object_id') {
      const r = this.records.get(value);
      return r && !r.archived ? r : undefined;
    }
    if (this.isIdProperty(property)) {
      const id = this.unique.get(property)?.get(value);
      const r = id === undefined ? undefined : this.records.get(id);
      return r && !r.archived ? r : undefined;
    }
    for (const r of this.records.values()) if (!r.archived && r.properties[property] === value) return r;
    return undefined;
  }

  /** Checks and normalises one value for a property; returns the stored string or a problem. */
  normalise(name: string, raw: unknown): { value: string } | { problem: ValueProblem } {
    const p = this.properties.get(name);
    if (!p) return { problem: { code: 'PROPERTY_DOESNT_EXIST', message: `Property "${name}" does not exist`, property: name } };
    if (p.readOnlyValue || p.calculated) return { problem: { code: 'READ_ONLY_VALUE', message: `${name} is a read only property; its value cannot be set.`, property: name } };
    if (raw === null || raw === '') return { value: '' };
    const text = String(raw);
    const bad = (why: string): { problem: ValueProblem } => ({ problem: { code: 'INVALID_' + p.type.toUpperCase(), message: `${text} was not a valid ${why}.`, property: name } });
    switch (p.type) {
      case 'number': {
        const n = Number(text);
        return text.trim() !== '' && Number.isFinite(n) ? { value: String(n) } : bad('number');
      }
      case 'bool':
        return text === 'true' || text === 'false' ? { value: text } : bad('boolean');
      case 'enumeration': {
        const allowed = p.options.filter((o) => !o.hidden).map((o) => o.value);
        const parts = p.fieldType === 'checkbox' ? text.split(';') : [text];
        const wrong = parts.find((v) => !allowed.includes(v));
        if (wrong === undefined) return { value: text };
        return { problem: { code: 'INVALID_OPTION', message: `${wrong} was not one of the allowed options: [${allowed.join(', ')}]`, property: name } };
      }
      case 'date': {
        if (ISO_DATE.test(text) && !Number.isNaN(Date.parse(text))) return { value: text };
        if (/^\d+$/.test(text)) {
          const d = new Date(Number(text));
          if (d.getUTCHours() + d.getUTCMinutes() + d.getUTCSeconds() + d.getUTCMilliseconds() !== 0) {
            return { problem: { code: 'INVALID_DATE', message: `${text} is at ${d.toISOString()} which is not midnight!`, property: name } };
          }
          return { value: d.toISOString().slice(0, 10) };
        }
        return bad('date');
      }
      case 'datetime': {
        const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
        return Number.isNaN(ms) ? bad('datetime') : { value: new Date(ms).toISOString() };
      }
      default:
        return { value: text };
    }
  }

  /** Validates a full property set; returns normalised values and every problem. */
  check(props: Record<string, unknown>): { values: Record<string, string>; problems: ValueProblem[] } {
    const values: Record<string, string> = {};
    const problems: ValueProblem[] = [];
    for (const [name, raw] of Object.entries(props ?? {})) {
      const r = this.normalise(name, raw);
      if ('problem' in r) problems.push(r.problem);
      else values[name] = r.value;
    }
    return { values, problems };
  }

  create(values: Record<string, string>, now: string): CrmRecord {
    const id = this.nextId();
    const r: CrmRecord = { id, properties: { hs_object_id: id, createdate: now, hs_lastmodifieddate: now }, createdAt: now, updatedAt: now, archived: false };
    this.records.set(id, r);
    this.apply(r, values, now);
    return r;
  }

  apply(r: CrmRecord, values: Record<string, string>, now: string): void {
    for (const [k, v] of Object.entries(values)) {
      const idx = this.indexFor(k);
      if (idx) {
        const old = r.properties[k];
        if (old !== undefined && idx.get(old) === r.id) idx.delete(old);
        if (v !== '') idx.set(v, r.id);
      }
      r.properties[k] = v;
    }
    r.updatedAt = now;
    r.properties.hs_lastmodifieddate = now;
  }

  archive(r: CrmRecord, now: string): void {
    r.archived = true;
    r.updatedAt = now;
    for (const [k, v] of Object.entries(r.properties)) {
      const idx = this.indexFor(k);
      if (idx && idx.get(v) === r.id) idx.delete(v);
    }
  }

  /** Removes a record for good (tests use it to simulate a contact deleted in the CRM). */
  purge(id: string): void {
    const r = this.records.get(id);
    if (r) this.archive(r, new Date().toISOString());
    this.records.delete(id);
  }

  private indexFor(property: string): Map<string, string> | undefined {
    if (!this.isIdProperty(property) || property === 'hs_object_id') return undefined;
    let idx = this.unique.get(property);
    if (!idx) {
      idx = new Map();
      this.unique.set(property, idx);
    }
    return idx;
  }
}

export function newPropertyDef(body: Record<string, unknown>, now: string): PropertyDef | string {
  const types = ['string', 'number', 'date', 'datetime', 'enumeration', 'bool'];
  for (const k of ['name', 'label', 'type', 'fieldType', 'groupName']) {
    if (typeof body[k] !== 'string' || body[k] === '') return `${k} is required`;
  }
  if (!types.includes(body.type as string)) return `type must be one of ${types.join(', ')}`;
  if (!/^[a-z][a-z0-9_]*$/.test(body.name as string)) return `name must be lower case letters, digits and _`;
  const opts = Array.isArray(body.options) ? body.options as Array<Record<string, unknown>> : [];
  if (body.type === 'enumeration' && opts.length === 0) return 'enumeration properties need options';
  return {
    name: body.name as string, label: body.label as string, type: body.type as PropertyDef['type'], fieldType: body.fieldType as string,
    groupName: body.groupName as string, description: typeof body.description === 'string' ? body.description : '',
    options: opts.map((o, i) => ({ label: String(o.label ?? o.value), value: String(o.value), hidden: o.hidden === true, displayOrder: typeof o.displayOrder === 'number' ? o.displayOrder : i })),
    hasUniqueValue: body.hasUniqueValue === true, calculated: false, readOnlyValue: false, createdAt: now, updatedAt: now,
  };
}
