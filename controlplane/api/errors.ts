// Errors as the API answers them: ApiError for the failures the API itself raises, and the
// JSON error body every failure gets. The codes and statuses live in the registry
// (error-codes.ts).
import { KnobosError } from '../store/errors.ts';
import { API_CODES, ERROR_CODES } from './error-codes.ts';

export { ERROR_CODES };

export type ApiErrorCode = keyof typeof API_CODES;

/** An error the API raises itself; its status comes from the registry. */
export class ApiError extends KnobosError {
  readonly status: number;
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    details: Record<string, unknown> = {},
  ) {
    super(message, details);
    this.status = API_CODES[code].status;
  }
}

export interface ErrorBody {
  error: {
    code: string;
    message: string;
    field?: string;
    rule?: string;
    [detail: string]: unknown;
  };
}

const RESERVED = new Set(['code', 'message', 'status']);

/** The JSON body of an error: its code, message, and details (field, rule, knob, ...). */
export function errorBody(code: string, message: string, details: Record<string, unknown> = {}) {
  const extra = Object.fromEntries(
    Object.entries(details).filter(([k, v]) => !RESERVED.has(k) && v !== undefined),
  );
  return { error: { code, message, ...extra } } satisfies ErrorBody;
}

/** The body and status of a typed error. */
export function fromKnobosError(err: KnobosError): { status: number; body: ErrorBody } {
  return { status: err.status, body: errorBody(err.code, err.message, err.details) };
}

/** The JSON schema of every error body, for the OpenAPI document. */
export const errorBodySchema = {
  $id: 'ApiError',
  type: 'object',
  description: 'Every error: a stable code (see docs/api-errors.md), a message, and details.',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      additionalProperties: true,
      properties: {
        code: { type: 'string', enum: Object.keys(ERROR_CODES) },
        message: { type: 'string' },
        field: { type: 'string', description: 'the input field at fault' },
        rule: { type: 'string', description: 'the rule it broke' },
      },
    },
  },
} as const;
