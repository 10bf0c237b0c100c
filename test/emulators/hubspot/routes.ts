import { randomUUID } from 'node:crypto';
import { canonicalType, newPropertyDef, ObjectTypeStore, type CrmRecord, type PropertyDef, type ValueProblem } from './store.ts';

/**
 * The CRM endpoints segsync uses, with HubSpot's request rules and answer shapes. Each handler returns
 * {status, body}; the server adds limits, faults and headers around it.
 */

export interface Answer { status: number; body?: unknown }

type Json = Record<string, unknown>;

const MAX_BATCH = 100;

export function errorBody(status: number, category: string, message: string, extra: Json = {}): Answer {
  return { status, body: { status: 'error', message, correlationId: randomUUID(), category, ...extra } };
}

export class Crm {
  readonly types = new Map<string, ObjectTypeStore>();
  /** contact id -> ticket ids (v4 associations: 15 contact_to_ticket, and read backwards 16 ticket_to_contact). */
  readonly contactTickets = new Map<string, Set<string>>();
  private seq = 1000;
  shuffle: (n: number) => number[] = (n) => [...Array(n).keys()];
  /** Associations per contact per page of a v4 batch read (HubSpot pages long lists with paging.next.after). */
  associationPageSize = 500;
  /** Results one search query can page through (HubSpot: 10,000); tests lower it to reach the cap quickly. */
  searchCap = 10_000;

  /** E-mail addresses HubSpot refuses from now on: a GDPR delete by an e-mail no contact has blocklists it. */
  readonly blocklist = new Set<string>();
  /** Contact ids permanently deleted by GDPR delete (gone, unlike an archive, which is restorable). */
  readonly purged: string[] = [];

  constructor() {
    for (const t of ['contacts', 'companies', 'tickets']) this.defineType(t);
  }

  /**
   * POST /crm/v3/objects/contacts/gdpr-delete {objectId, idProperty?}: permanently deletes the contact and its
   * associations; 204 without a body. With idProperty email and no such contact, the address is blocklisted (204);
   * an unknown id is a 404.
   */
  gdprDelete(body: unknown): Answer {
    const b = body as { objectId?: unknown; idProperty?: unknown } | null;
    if (!b || typeof b.objectId !== 'string' || !b.objectId) return errorBody(400, 'VALIDATION_ERROR', 'Invalid input JSON: objectId is required');
    const store = this.store('contacts')!;
    const idProperty = typeof b.idProperty === 'string' ? b.idProperty : 'hs_object_id';
    if (idProperty !== 'hs_object_id' && !store.isIdProperty(idProperty)) return errorBody(400, 'VALIDATION_ERROR', `${idProperty} is not a unique identifier property`);
    const r = store.findBy(idProperty, b.objectId);
    if (!r) {
      if (idProperty === 'email') {
        this.blocklist.add(b.objectId.toLowerCase());
        return { status: 204 };
      }
      return errorBody(404, 'OBJECT_NOT_FOUND', 'resource not found');
    }
    store.archive(r, new Date().toISOString());
    store.records.delete(r.id);
    this.contactTickets.delete(r.id);
    this.purged.push(r.id);
    return { status: 204 };
  }

  defineType(type: string, props?: PropertyDef[]): ObjectTypeStore {
    const store = new ObjectTypeStore(type, () => String(++this.seq), props);
    this.types.set(type, store);
    return store;
  }

  store(objectType: string): ObjectTypeStore | undefined {
    return this.types.get(canonicalType(objectType));
  }

  private view(r: CrmRecord, props: string[] | null): Json {
    const properties: Record<string, string | null> = {};
    const names = props ?? Object.keys(r.properties);
    for (const n of ['hs_object_id', 'createdate', 'hs_lastmodifieddate', ...names]) properties[n] = r.properties[n] ?? null;
    return { id: r.id, properties, createdAt: r.createdAt, updatedAt: r.updatedAt, archived: r.archived };
  }

  private batchShape(body: unknown): { inputs: Json[] } | Answer {
    const inputs = (body as Json | null)?.inputs;
    if (!Array.isArray(inputs)) return errorBody(400, 'VALIDATION_ERROR', 'Invalid input JSON on line 1: "inputs" is required');
    if (inputs.length > MAX_BATCH) return errorBody(400, 'VALIDATION_ERROR', `Batch input size ${inputs.length} exceeds the limit of ${MAX_BATCH}.`, { context: { limit: [String(MAX_BATCH)] } });
    const ids = inputs.map((i) => String((i as Json).id ?? ''));
    const dup = ids.find((id, n) => ids.indexOf(id) !== n);
    if (dup !== undefined) return errorBody(400, 'VALIDATION_ERROR', `Duplicate IDs found in batch input: [${dup}]. IDs must be unique`, { context: { ids: [dup] } });
    return { inputs: inputs as Json[] };
  }

  /** Property names that do not exist fail the whole batch, as HubSpot does. */
  private unknownProperties(store: ObjectTypeStore, inputs: Json[]): Answer | undefined {
    const unknown = new Set<string>();
    for (const i of inputs) for (const k of Object.keys((i.properties as Json | undefined) ?? {})) if (!store.properties.has(k)) unknown.add(k);
    if (unknown.size === 0) return undefined;
    const names = [...unknown];
    return errorBody(400, 'VALIDATION_ERROR', `Property values were not valid: ${JSON.stringify(names.map((n) => ({ isValid: false, message: `Property "${n}" does not exist`, error: 'PROPERTY_DOESNT_EXIST', name: n })))}`,
      { errors: names.map((n) => ({ message: `Property "${n}" does not exist`, code: 'PROPERTY_DOESNT_EXIST', in: n, context: { propertyName: [n] } })) });
  }

  private recordError(problems: ValueProblem[], traceId: string | undefined, id: string): Json {
    return {
      status: 'error', category: 'VALIDATION_ERROR', message: `Property values were not valid: ${problems.map((p) => p.message).join('; ')}`,
      context: traceId !== undefined ? { objectWriteTraceId: [traceId], id: [id] } : { id: [id] },
      errors: problems.map((p) => ({ message: p.message, code: p.code, in: p.property, context: { propertyName: [p.property] } })),
    };
  }

  private batchAnswer(results: Json[], errors: Json[], startedAt: string): Answer {
    const order = this.shuffle(results.length);
    const body: Json = { status: 'COMPLETE', results: order.map((i) => results[i]), startedAt, completedAt: new Date().toISOString() };
    if (errors.length > 0) return { status: 207, body: { ...body, numErrors: errors.length, errors } };
    return { status: 200, body };
  }

  upsert(objectType: string, body: unknown): Answer {
    const store = this.store(objectType);
    if (!store) return errorBody(400, 'VALIDATION_ERROR', `Unable to infer object type from: ${objectType}`);
    const shape = this.batchShape(body);
    if ('status' in shape) return shape;
    const startedAt = new Date().toISOString();
    for (const i of shape.inputs) {
      const idProperty = i.idProperty;
      if (typeof idProperty !== 'string') return errorBody(400, 'VALIDATION_ERROR', 'idProperty is required for batch upsert');
      if (!store.properties.has(idProperty)) return errorBody(400, 'VALIDATION_ERROR', `Property "${idProperty}" does not exist`, { errors: [{ message: `Property "${idProperty}" does not exist`, code: 'PROPERTY_DOESNT_EXIST', in: idProperty }] });
      if (!store.isIdProperty(idProperty)) return errorBody(400, 'VALIDATION_ERROR', `${idProperty} is not a unique identifier property; idProperty must have hasUniqueValue=true`);
    }
    const bad = this.unknownProperties(store, shape.inputs);
    if (bad) return bad;
    const results: Json[] = [];
    const errors: Json[] = [];
    const now = new Date().toISOString();
    for (const i of shape.inputs) {
      const id = String(i.id);
      const traceId = typeof i.objectWriteTraceId === 'string' ? i.objectWriteTraceId : undefined;
      const idProperty = i.idProperty as string;
      const { values, problems } = store.check({ ...(i.properties as Json | undefined), [idProperty]: id });
      if (problems.length > 0) {
        errors.push(this.recordError(problems, traceId, id));
        continue;
      }
      const existing = store.findBy(idProperty, id);
      const r = existing ?? store.create(values, now);
      if (existing) store.apply(existing, values, now);
      const sent = Object.keys((i.properties as Json | undefined) ?? {});
      results.push({ ...this.view(r, [idProperty, ...sent]), new: existing === undefined, ...(traceId !== undefined ? { objectWriteTraceId: traceId } : {}) });
    }
    return this.batchAnswer(results, errors, startedAt);
  }

  /** PATCH /crm/v3/objects/{type}/{id}[?idProperty=]: one record per call, as a hand-written script does it. */
  updateOne(objectType: string, id: string, idProperty: string, body: unknown): Answer {
    const store = this.store(objectType);
    if (!store) return errorBody(400, 'VALIDATION_ERROR', `Unable to infer object type from: ${objectType}`);
    const r = store.findBy(idProperty, id);
    if (!r) return errorBody(404, 'OBJECT_NOT_FOUND', `resource not found`);
    const props = ((body as Json | null)?.properties ?? {}) as Json;
    const bad = this.unknownProperties(store, [{ properties: props }]);
    if (bad) return bad;
    const { values, problems } = store.check(props);
    if (problems.length > 0) return errorBody(400, 'VALIDATION_ERROR', `Property values were not valid: ${problems.map((p) => p.message).join('; ')}`);
    store.apply(r, values, new Date().toISOString());
    return { status: 200, body: this.view(r, Object.keys(values)) };
  }

  read(objectType: string, body: unknown, archived: boolean): Answer {
    const store = this.store(objectType);
    if (!store) return errorBody(400, 'VALIDATION_ERROR', `Unable to infer object type from: ${objectType}`);
    const shape = this.batchShape(body);
    if ('status' in shape) return shape;
    const b = body as Json;
    const idProperty = typeof b.idProperty === 'string' ? b.idProperty : 'hs_object_id';
    if (idProperty !== 'hs_object_id' && !store.isIdProperty(idProperty)) return errorBody(400, 'VALIDATION_ERROR', `${idProperty} is not a unique identifier property`);
    const props = Array.isArray(b.properties) ? (b.properties as unknown[]).map(String) : [];
    const startedAt = new Date().toISOString();
    const results: Json[] = [];
    const missing: string[] = [];
    for (const i of shape.inputs) {
      const id = String(i.id);
      const r = archived ? [...store.records.values()].find((x) => x.archived && (idProperty === 'hs_object_id' ? x.id === id : x.properties[idProperty] === id)) : store.findBy(idProperty, id);
      if (r) results.push(this.view(r, idProperty === 'hs_object_id' ? props : [idProperty, ...props]));
      else missing.push(id);
    }
    const errors = missing.length === 0 ? [] : [{
      status: 'error', category: 'OBJECT_NOT_FOUND', message: `Could not get some ${store.type.toUpperCase()} objects, they may be deleted or not exist. Check that ids are valid.`, context: { ids: missing },
    }];
    return this.batchAnswer(results, errors, startedAt);
  }

  update(objectType: string, body: unknown): Answer {
    const store = this.store(objectType);
    if (!store) return errorBody(400, 'VALIDATION_ERROR', `Unable to infer object type from: ${objectType}`);
    const shape = this.batchShape(body);
    if ('status' in shape) return shape;
    const bad = this.unknownProperties(store, shape.inputs);
    if (bad) return bad;
    const startedAt = new Date().toISOString();
    const now = new Date().toISOString();
    const results: Json[] = [];
    const errors: Json[] = [];
    const missing: string[] = [];
    for (const i of shape.inputs) {
      const id = String(i.id);
      const idProperty = typeof i.idProperty === 'string' ? i.idProperty : 'hs_object_id';
      const traceId = typeof i.objectWriteTraceId === 'string' ? i.objectWriteTraceId : undefined;
      const r = store.findBy(idProperty, id);
      if (!r) {
        missing.push(id);
        continue;
      }
      const { values, problems } = store.check((i.properties as Json | undefined) ?? {});
      if (problems.length > 0) {
        errors.push(this.recordError(problems, traceId, id));
        continue;
      }
      store.apply(r, values, now);
      results.push({ ...this.view(r, Object.keys(values)), ...(traceId !== undefined ? { objectWriteTraceId: traceId } : {}) });
    }
    if (missing.length > 0) errors.push({ status: 'error', category: 'OBJECT_NOT_FOUND', message: 'Could not update some objects, they may be deleted or not exist.', context: { ids: missing } });
    return this.batchAnswer(results, errors, startedAt);
  }

  archive(objectType: string, body: unknown): Answer {
    const store = this.store(objectType);
    if (!store) return errorBody(400, 'VALIDATION_ERROR', `Unable to infer object type from: ${objectType}`);
    const shape = this.batchShape(body);
    if ('status' in shape) return shape;
    const now = new Date().toISOString();
    for (const i of shape.inputs) {
      const r = store.findBy('hs_object_id', String(i.id));
      if (r) store.archive(r, now);
    }
    return { status: 204 };
  }

  getProperties(objectType: string): Answer {
    const store = this.store(objectType);
    if (!store) return errorBody(400, 'VALIDATION_ERROR', `Unable to infer object type from: ${objectType}`);
    return { status: 200, body: { results: [...store.properties.values()].map((p) => this.propertyView(p)) } };
  }

  createProperty(objectType: string, body: unknown): Answer {
    const store = this.store(objectType);
    if (!store) return errorBody(400, 'VALIDATION_ERROR', `Unable to infer object type from: ${objectType}`);
    const p = newPropertyDef((body ?? {}) as Json, new Date().toISOString());
    if (typeof p === 'string') return errorBody(400, 'VALIDATION_ERROR', p);
    if (store.properties.has(p.name)) return errorBody(409, 'OBJECT_ALREADY_EXISTS', `Property named '${p.name}' already exists.`);
    store.addProperty(p);
    return { status: 201, body: this.propertyView(p) };
  }

  private propertyView(p: PropertyDef): Json {
    const { readOnlyValue, ...rest } = p;
    return { ...rest, hidden: false, formField: true, modificationMetadata: { archivable: true, readOnlyDefinition: readOnlyValue, readOnlyValue } };
  }

  /** Ticket ids associated with a contact, and the reverse (HubSpot keeps both directions of one association). */
  associated(from: 'contacts' | 'tickets', id: string): string[] {
    if (from === 'contacts') return [...(this.contactTickets.get(id) ?? [])];
    const out: string[] = [];
    for (const [contact, tickets] of this.contactTickets) if (tickets.has(id)) out.push(contact);
    return out;
  }

  /**
   * v4 batch read of associations, contacts <-> tickets (typeId 15 contact_to_ticket, 16 ticket_to_contact):
   * what segsync uses. Long lists come in pages (paging.next.after per input); an input without associations
   * is a 207 error, not an empty result.
   */
  readAssociations(from: string, to: string, body: unknown): Answer {
    const pair = `${canonicalType(from)}->${canonicalType(to)}`;
    if (pair !== 'contacts->tickets' && pair !== 'tickets->contacts') return errorBody(400, 'VALIDATION_ERROR', `association ${from} -> ${to} is not emulated`);
    const fromType = canonicalType(from) as 'contacts' | 'tickets';
    const toStore = this.store(to)!;
    const typeId = fromType === 'contacts' ? 15 : 16;
    const shape = this.batchShape(body);
    if ('status' in shape) return shape;
    const startedAt = new Date().toISOString();
    const results: Json[] = [];
    const errors: Json[] = [];
    for (const i of shape.inputs) {
      const id = String(i.id);
      const all = this.associated(fromType, id).filter((t) => toStore.findBy('hs_object_id', t));
      const start = typeof i.after === 'string' ? Number(i.after) : 0;
      const page = all.slice(start, start + this.associationPageSize);
      const paging = start + this.associationPageSize < all.length ? { paging: { next: { after: String(start + this.associationPageSize), link: null } } } : {};
      if (page.length === 0) {
        errors.push({ status: 'error', category: 'OBJECT_NOT_FOUND', message: `No ${toStore.type} are associated with ${fromType.slice(0, -1)} ${id}.`, context: { fromObjectId: [id] }, subCategory: 'crm.associations.NO_ASSOCIATIONS_FOUND' });
        continue;
      }
      results.push({ from: { id }, to: page.map((t) => ({ toObjectId: Number(t), associationTypes: [{ category: 'HUBSPOT_DEFINED', typeId, label: null }] })), ...paging });
    }
    if (errors.length > 0) return { status: 207, body: { status: 'COMPLETE', results, errors, numErrors: errors.length, startedAt, completedAt: new Date().toISOString() } };
    return { status: 200, body: { status: 'COMPLETE', results, startedAt, completedAt: new Date().toISOString() } };
  }

  /**
   * POST /crm/v3/objects/{type}/search with HubSpot's rules: filterGroups are ORed, the filters of a group
   * ANDed (at most 5 groups, 6 filters a group, 18 in all); one sort; `limit` up to 200 (default 10); paging
   * by `after` (an offset), and no further than `searchCap` (10,000) results into one query: asking for more
   * is a 400. Datetime filters take epoch milliseconds (or ISO); string comparisons ignore case.
   */
  search(objectType: string, body: unknown): Answer {
    const store = this.store(objectType);
    if (!store) return errorBody(400, 'VALIDATION_ERROR', `Unable to infer object type from: ${objectType}`);
    const b = (body ?? {}) as Json;
    const limit = b.limit === undefined ? 10 : Number(b.limit);
    if (!Number.isInteger(limit) || limit < 0 || limit > SEARCH_PAGE_MAX) return errorBody(400, 'VALIDATION_ERROR', `limit must be between 0 and ${SEARCH_PAGE_MAX}; got ${String(b.limit)}`);
    const after = b.after === undefined || b.after === null || b.after === '' ? 0 : Number(b.after);
    if (!Number.isInteger(after) || after < 0) return errorBody(400, 'VALIDATION_ERROR', `after must be a paging cursor from an earlier answer; got ${String(b.after)}`);
    if (after >= this.searchCap) return errorBody(400, 'VALIDATION_ERROR', `There was a problem with the request. The search API returns at most ${this.searchCap} results for a query; narrow the filters to see more.`);
    const groups = Array.isArray(b.filterGroups) ? b.filterGroups as Json[] : [];
    const filters = groups.map((g) => (Array.isArray(g.filters) ? g.filters as Json[] : []));
    if (groups.length > 5) return errorBody(400, 'VALIDATION_ERROR', `at most 5 filterGroups are allowed; got ${groups.length}`);
    if (filters.some((f) => f.length > 6) || filters.flat().length > 18) return errorBody(400, 'VALIDATION_ERROR', 'at most 6 filters a filterGroup and 18 filters in all are allowed');
    for (const f of filters.flat()) {
      const name = String(f.propertyName ?? '');
      if (!store.properties.has(name)) return errorBody(400, 'VALIDATION_ERROR', `There was a problem with the request. Property ${JSON.stringify(name)} does not exist`);
      if (!SEARCH_OPERATORS.has(String(f.operator))) return errorBody(400, 'VALIDATION_ERROR', `operator ${JSON.stringify(f.operator)} is not one of ${[...SEARCH_OPERATORS].join(', ')}`);
    }
    const sorts = Array.isArray(b.sorts) ? b.sorts as unknown[] : [];
    if (sorts.length > 1) return errorBody(400, 'VALIDATION_ERROR', 'only one sort is allowed');
    const sort = sorts[0] === undefined ? undefined : typeof sorts[0] === 'string' ? { propertyName: sorts[0], direction: 'ASCENDING' } : sorts[0] as Json;
    const sortName = sort ? String(sort.propertyName ?? '') : undefined;
    if (sortName !== undefined && !store.properties.has(sortName)) return errorBody(400, 'VALIDATION_ERROR', `There was a problem with the request. Property ${JSON.stringify(sortName)} does not exist`);
    const matches = [...store.records.values()].filter((r) => !r.archived && (filters.length === 0 || filters.some((group) => group.every((f) => this.matches(store, r, f)))));
    const byId = (x: CrmRecord, y: CrmRecord) => Number(x.id) - Number(y.id);
    if (sortName !== undefined) {
      const sign = String(sort!.direction ?? 'ASCENDING').toUpperCase() === 'DESCENDING' ? -1 : 1;
      const type = store.properties.get(sortName)!.type;
      matches.sort((x, y) => sign * compareValues(type, x.properties[sortName] ?? '', y.properties[sortName] ?? '') || byId(x, y));
    } else matches.sort(byId);
    const props = Array.isArray(b.properties) && b.properties.length > 0 ? (b.properties as unknown[]).map(String) : (SEARCH_DEFAULT_PROPERTIES[store.type] ?? []);
    const end = Math.min(after + limit, matches.length);
    const results = matches.slice(after, end).map((r) => this.view(r, props));
    const paging = end < matches.length ? { paging: { next: { after: String(end), link: `?after=${end}` } } } : {};
    return { status: 200, body: { total: matches.length, results, ...paging } };
  }

  private matches(store: ObjectTypeStore, r: CrmRecord, f: Json): boolean {
    const name = String(f.propertyName);
    const type = store.properties.get(name)!.type;
    const actual = r.properties[name] ?? '';
    const has = actual !== '';
    const cmp = (v: unknown) => compareValues(type, actual, String(v ?? ''));
    const values = Array.isArray(f.values) ? (f.values as unknown[]) : [];
    switch (f.operator) {
      case 'HAS_PROPERTY': return has;
      case 'NOT_HAS_PROPERTY': return !has;
      case 'EQ': return has && cmp(f.value) === 0;
      case 'NEQ': return !has || cmp(f.value) !== 0;
      case 'LT': return has && cmp(f.value) < 0;
      case 'LTE': return has && cmp(f.value) <= 0;
      case 'GT': return has && cmp(f.value) > 0;
      case 'GTE': return has && cmp(f.value) >= 0;
      case 'BETWEEN': return has && cmp(f.value) >= 0 && cmp(f.highValue) <= 0;
      case 'IN': return has && values.some((v) => cmp(v) === 0);
      case 'NOT_IN': return !has || values.every((v) => cmp(v) !== 0);
      case 'CONTAINS_TOKEN': return actual.toLowerCase().split(/\s+/).includes(String(f.value ?? '').toLowerCase().replace(/\*/g, ''));
      case 'NOT_CONTAINS_TOKEN': return !actual.toLowerCase().split(/\s+/).includes(String(f.value ?? '').toLowerCase());
      default: return false;
    }
  }
}

const SEARCH_PAGE_MAX = 200;
const SEARCH_OPERATORS = new Set(['EQ', 'NEQ', 'LT', 'LTE', 'GT', 'GTE', 'BETWEEN', 'IN', 'NOT_IN', 'HAS_PROPERTY', 'NOT_HAS_PROPERTY', 'CONTAINS_TOKEN', 'NOT_CONTAINS_TOKEN']);
/** What a search returns when the request names no properties (besides hs_object_id, createdate, hs_lastmodifieddate). */
const SEARCH_DEFAULT_PROPERTIES: Record<string, string[]> = {
  tickets: ['content', 'hs_pipeline', 'hs_pipeline_stage', 'hs_ticket_category', 'hs_ticket_priority', 'subject'],
  contacts: ['email', 'firstname', 'lastname'],
  companies: ['domain', 'name'],
};

/** Orders two stored values of a property type: numbers and instants by value, the rest as text ignoring case. */
function compareValues(type: string, a: string, b: string): number {
  if (type === 'number' || type === 'datetime' || type === 'date') {
    const n = (s: string) => (type === 'number' || /^-?\d+$/.test(s) ? Number(s) : Date.parse(s));
    const x = n(a);
    const y = n(b);
    if (Number.isNaN(x) || Number.isNaN(y)) return a.localeCompare(b);
    return x - y;
  }
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  return x < y ? -1 : x > y ? 1 : 0;
}
