import { z } from 'zod';
import { defineForm, f } from '../form-fields';

export const environmentForm = defineForm({
  schema: z.object({ name: f.name(63), description: f.text() }),
  fields: [
    { name: 'name', label: 'Name', help: 'Unique, for example prod, staging, dev. Typed to confirm dangerous actions here.', input: { type: 'text' } },
    { name: 'description', label: 'Description', help: 'What runs here and who owns it.', input: { type: 'textarea' } },
  ],
});
