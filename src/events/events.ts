import crypto from 'node:crypto';

/**
 * Key Vault's Event Grid events, as Azure publishes them: the event types, the `data` payload (PascalCase fields,
 * NBF/EXP in unix seconds or null) and the two envelopes a subscription can ask for. No event ever carries a value.
 */
export const OBJECT_TYPES = ['Secret', 'Key', 'Certificate'] as const;
export type ObjectType = (typeof OBJECT_TYPES)[number];
export type ObjectEventKind = 'NewVersionCreated' | 'NearExpiry' | 'Expired';

export const EVENT_TYPES = [
  ...OBJECT_TYPES.flatMap((t) => (['NewVersionCreated', 'NearExpiry', 'Expired'] as const).map((k) => `Microsoft.KeyVault.${t}${k}`)),
  'Microsoft.KeyVault.VaultAccessPolicyChanged',
];

export const DELIVERY_SCHEMAS = ['EventGridSchema', 'CloudEventSchemaV1_0'] as const;
export type DeliverySchema = (typeof DELIVERY_SCHEMAS)[number];

/** Azure's KeyVault event data (the same fields for every Key Vault event type). */
export interface KeyVaultEventData {
  Id: string;
  VaultName: string;
  ObjectType: ObjectType | 'Vault';
  ObjectName: string;
  Version: string | null;
  NBF: number | null;
  EXP: number | null;
}

/** One event before it is wrapped in a subscription's schema. */
export interface VaultEvent {
  id: string;
  type: string;
  /** The vault's ARM resource id: Event Grid's `topic`, CloudEvents' `source`. */
  topic: string;
  subject: string;
  time: number;
  data: KeyVaultEventData;
}

export const newEvent = (fields: Omit<VaultEvent, 'id'>): VaultEvent => ({ id: crypto.randomUUID(), ...fields });

/** The event as the subscription's schema spells it: Event Grid's envelope, or a CloudEvents 1.0 structured event. */
export function envelope(event: VaultEvent, schema: DeliverySchema) {
  const time = new Date(event.time).toISOString();
  if (schema === 'CloudEventSchemaV1_0') {
    return { id: event.id, source: event.topic, specversion: '1.0', type: event.type, subject: event.subject, time, data: event.data };
  }
  return {
    id: event.id, topic: event.topic, subject: event.subject, eventType: event.type, eventTime: time, data: event.data,
    dataVersion: '1', metadataVersion: '1',
  };
}
