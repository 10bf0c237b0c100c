/**
 * The emulated org's metadata: the describe shape Salesforce returns (the fields segsync reads), for Contact
 * and Case with the custom fields an admin creates for segsync. Tests may pass their own objects.
 */

export type SfFieldType = 'id' | 'string' | 'email' | 'double' | 'int' | 'boolean' | 'date' | 'datetime' | 'picklist' | 'reference' | 'textarea';

export interface SfField {
  name: string;
  label: string;
  type: SfFieldType;
  length: number;
  externalId: boolean;
  idLookup: boolean;
  unique: boolean;
  createable: boolean;
  updateable: boolean;
  nillable: boolean;
  defaultedOnCreate: boolean;
  calculated: boolean;
  custom: boolean;
  picklistValues: Array<{ value: string; label: string; active: boolean; defaultValue: boolean }>;
  restrictedPicklist: boolean;
  referenceTo: string[];
  precision: number;
  scale: number;
}

export interface SfObject {
  name: string;
  keyPrefix: string;
  fields: SfField[];
}

export function field(name: string, type: SfFieldType, over: Partial<SfField> & { values?: string[] } = {}): SfField {
  const { values, ...rest } = over;
  const custom = name.endsWith('__c');
  return {
    name, label: name.replace(/__c$/, '').replace(/_/g, ' '), type,
    length: type === 'string' || type === 'email' || type === 'picklist' || type === 'textarea' ? 255 : type === 'id' || type === 'reference' ? 18 : 0,
    externalId: false, idLookup: type === 'id', unique: false, createable: type !== 'id', updateable: type !== 'id',
    nillable: type !== 'id' && type !== 'boolean', defaultedOnCreate: type === 'id' || type === 'boolean', calculated: false, custom,
    picklistValues: (values ?? []).map((v) => ({ value: v, label: v, active: true, defaultValue: false })),
    restrictedPicklist: type === 'picklist', referenceTo: [],
    precision: type === 'double' ? 18 : 0, scale: type === 'double' ? 2 : 0,
    ...rest,
  };
}

export const RFM_SEGMENTS = ['Champions', 'Loyal Customers', 'Potential Loyalists', 'New Customers', 'Promising', 'Need Attention',
  'About To Sleep', 'At Risk', 'Cannot Lose Them', 'Hibernating', 'Lost'];

const readOnly = { createable: false, updateable: false } as const;

export function defaultObjects(): SfObject[] {
  return [
    {
      name: 'Contact', keyPrefix: '003',
      fields: [
        field('Id', 'id'),
        field('FirstName', 'string', { length: 40 }),
        field('LastName', 'string', { length: 80, nillable: false }),
        field('Name', 'string', { length: 121, ...readOnly, calculated: true }),
        field('Email', 'email', { length: 80, idLookup: true }),
        field('CreatedDate', 'datetime', { ...readOnly, nillable: false, defaultedOnCreate: true }),
        field('LastModifiedDate', 'datetime', { ...readOnly, nillable: false, defaultedOnCreate: true }),
        field('Customer_Id__c', 'string', { length: 64, externalId: true, idLookup: true, unique: true }),
        field('RFM_Segment__c', 'picklist', { values: RFM_SEGMENTS }),
        field('RFM_Score__c', 'string', { length: 3 }),
        field('RFM_Recency_Days__c', 'double', { precision: 18, scale: 0 }),
        field('RFM_Frequency__c', 'double', { precision: 18, scale: 0 }),
        field('RFM_Monetary__c', 'double', { precision: 18, scale: 2 }),
        field('RFM_Segment_Since__c', 'date'),
        field('RFM_Synced_At__c', 'datetime'),
        field('Do_Not_Market__c', 'boolean', { nillable: false }),
      ],
    },
    {
      name: 'Case', keyPrefix: '500',
      fields: [
        field('Id', 'id'),
        field('CaseNumber', 'string', { length: 30, ...readOnly, nillable: false, defaultedOnCreate: true }),
        field('ContactId', 'reference', { referenceTo: ['Contact'] }),
        field('Subject', 'string', { length: 255 }),
        field('Status', 'picklist', { values: ['New', 'Working', 'Escalated', 'Closed'], restrictedPicklist: false, defaultedOnCreate: true }),
        field('IsClosed', 'boolean', { ...readOnly, defaultedOnCreate: true }),
        field('CreatedDate', 'datetime', { ...readOnly, nillable: false, defaultedOnCreate: true }),
        field('LastModifiedDate', 'datetime', { ...readOnly, nillable: false, defaultedOnCreate: true }),
        field('Priority', 'picklist', { values: ['High', 'Medium', 'Low'], restrictedPicklist: false }),
        field('RFM_Segment__c', 'string', { length: 80 }),
      ],
    },
  ];
}

export function describeObject(o: SfObject): Record<string, unknown> {
  return {
    name: o.name, label: o.name, keyPrefix: o.keyPrefix, custom: false, createable: true, updateable: true, deletable: true,
    queryable: true, fields: o.fields.map((f) => ({ ...f })),
  };
}
