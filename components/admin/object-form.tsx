'use client';

import { useRouter } from 'next/navigation';
import { useState, useTransition } from 'react';
import { useForm } from 'react-hook-form';
import { useHydrated } from '@/components/hydrated';
import type { FieldView } from '@/lib/features/admin/form-fields';
import type { SaveOutcome } from '@/lib/features/admin/save-outcome';

export type Intent = 'save' | 'addanother' | 'continue';

interface Props {
  model: string;
  /** The model's fields as plain data; what they accept is checked where they are saved. */
  fields: FieldView[];
  id: number | null;
  initial: Record<string, string>;
  /** Options for relation fields, loaded on the server. */
  options: Record<string, { value: string; label: string }[]>;
  save: (model: string, id: number | null, values: Record<string, string>, intent: Intent) => Promise<SaveOutcome>;
  /** Set when the user may look but not change: the fields are disabled and there is no save button. */
  readOnlyReason?: string;
  /** Whether the delete link is offered. */
  canDelete?: boolean;
}

export function ObjectForm({ model, fields, id, initial, options, save, readOnlyReason, canDelete = true }: Props) {
  const router = useRouter();
  const [pending, startTransition] = useTransition();
  const [formError, setFormError] = useState('');
  const [intent, setIntent] = useState<Intent>('save');
  const hydrated = useHydrated();
  const {
    register,
    handleSubmit,
    setError,
    formState: { errors },
  } = useForm<Record<string, string>>({
    defaultValues: initial,
    mode: 'onSubmit',
  });

  const onSubmit = (values: Record<string, string>) => {
    // What was typed goes to the server, which checks it with the model's schema (one judge, as in
    // Django's admin) and answers each field's message.
    startTransition(async () => {
      const res = await save(model, id, values, intent);
      if (res.ok) {
        router.push(res.redirect);
        router.refresh();
        return;
      }
      setFormError(res.formError ?? 'Please correct the errors below.');
      for (const [k, msg] of Object.entries(res.fieldErrors)) setError(k, { type: 'server', message: msg });
    });
  };

  return (
    <form
      className="object-form"
      method="post"
      noValidate
      onSubmit={(e) => void handleSubmit(onSubmit, () => setFormError('Please correct the errors below.'))(e)}
    >
      {formError && (
        <p className="errornote" role="alert">
          {formError}
        </p>
      )}
      {readOnlyReason && (
        <p className="help read-only-note" data-read-only>
          {readOnlyReason}
        </p>
      )}
      <fieldset className="module" disabled={!!readOnlyReason}>
        {fields.map((field) => (
          <Row key={field.name} field={field} options={options[field.name]} error={errors[field.name]?.message} register={register} />
        ))}
      </fieldset>
      {readOnlyReason ? null : (
        <div className="submit-row">
          <button type="submit" className="button default" name="_save" disabled={!hydrated || pending} onClick={() => setIntent('save')}>
            Save
          </button>
          <button
            type="submit"
            className="button"
            name="_addanother"
            disabled={!hydrated || pending}
            onClick={() => setIntent('addanother')}
          >
            Save and add another
          </button>
          <button type="submit" className="button" name="_continue" disabled={!hydrated || pending} onClick={() => setIntent('continue')}>
            Save and continue editing
          </button>
          {id !== null && canDelete && (
            <a className="deletelink" href={`/admin/${model}/${id}/delete`}>
              Delete
            </a>
          )}
        </div>
      )}
    </form>
  );
}

function Row({
  field,
  options,
  error,
  register,
}: {
  field: FieldView;
  options?: { value: string; label: string }[];
  error?: string;
  register: ReturnType<typeof useForm<Record<string, string>>>['register'];
}) {
  const id = `id_${field.name}`;
  const describedBy = [field.help && `${id}_help`, error && `${id}_error`].filter(Boolean).join(' ') || undefined;
  const common = { id, 'aria-invalid': error ? true : undefined, 'aria-describedby': describedBy, ...register(field.name) };
  let control: React.ReactNode;
  switch (field.input.type) {
    case 'textarea':
      control = <textarea rows={3} {...common} />;
      break;
    case 'select':
      control = (
        <select {...common}>
          {field.input.optional && <option value="">---------</option>}
          {field.input.choices.map((c) => (
            <option key={c} value={c}>
              {c}
            </option>
          ))}
        </select>
      );
      break;
    case 'relation':
      control = (
        <select {...common}>
          <option value="">---------</option>
          {(options ?? []).map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
      );
      break;
    case 'number':
      control = <input type="text" inputMode="numeric" {...common} />;
      break;
    default:
      control = <input type="text" placeholder={field.input.placeholder} {...common} />;
  }
  return (
    <div className={`form-row${error ? ' errors' : ''}`} data-field={field.name}>
      <label htmlFor={id}>{field.label}:</label>
      <div className="field">
        {control}
        {error && (
          <p className="errorlist" id={`${id}_error`} role="alert">
            {error}
          </p>
        )}
        {field.help && (
          <p className="help" id={`${id}_help`}>
            {field.help}
          </p>
        )}
      </div>
    </div>
  );
}
