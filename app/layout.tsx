import './globals.css';

export const metadata = { title: 'pgherd', description: 'A console for fleets of PostgreSQL clusters', icons: { icon: '/favicon.svg' } };

export default function RootLayout({ children }: { children: React.ReactNode }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
