'use client';

import { signIn } from 'next-auth/react';
import { useRouter } from 'next/navigation';
import { useState } from 'react';
import { useForm } from 'react-hook-form';
import { useHydrated } from '@/components/hydrated';

const INVALID = 'Please enter the correct username and password. Both fields may be case-sensitive.';

/** What the sign-in page says for each reason lib/features/auth/authenticate gives. */
const MESSAGES: Record<string, string> = {
  invalid: INVALID,
  unreachable: 'The directory (LDAP) cannot be reached right now, so directory accounts cannot sign in. Local accounts still can.',
  throttled: 'Too many failed sign-ins for this user or from this address. Wait a few minutes, then try again.',
  not_allowed: 'Your account has no role in pgherd. Ask an administrator to bind you or one of your groups to a role.',
};

interface Values {
  username: string;
  password: string;
}

export function SignInForm({ next }: { next: string }) {
  const router = useRouter();
  const [error, setError] = useState('');
  const hydrated = useHydrated();
  const {
    register,
    handleSubmit,
    formState: { isSubmitting, errors },
  } = useForm<Values>();

  const onSubmit = async (v: Values) => {
    setError('');
    const res = await signIn('credentials', { username: v.username, password: v.password, redirect: false });
    if (!res || res.error) {
      setError(MESSAGES[res?.error ?? ''] ?? INVALID);
      return;
    }
    router.push(next);
    router.refresh();
  };

  return (
    <form className="login-form" method="post" onSubmit={(e) => void handleSubmit(onSubmit)(e)} noValidate>
      {error && (
        <p className="errornote" role="alert">
          {error}
        </p>
      )}
      <div className="form-row">
        <label htmlFor="id_username">Username:</label>
        <input id="id_username" autoComplete="username" autoFocus {...register('username', { required: 'Enter your username.' })} />
        {errors.username && <p className="errorlist">{errors.username.message}</p>}
      </div>
      <div className="form-row">
        <label htmlFor="id_password">Password:</label>
        <input
          id="id_password"
          type="password"
          autoComplete="current-password"
          {...register('password', { required: 'Enter your password.' })}
        />
        {errors.password && <p className="errorlist">{errors.password.message}</p>}
      </div>
      <button type="submit" className="button default" disabled={!hydrated || isSubmitting}>
        Sign in
      </button>
    </form>
  );
}
