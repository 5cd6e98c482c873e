// An EC2 instance type as lib/aws/ec2 describes it, for tests of the ranking and the resize plan:
// x86_64, HVM, ENA required, not burstable unless said.
import type { TypeInfo } from '@/lib/aws/ec2';

export const instanceType = (name: string, vcpus: number, memoryGiB: number, more: Partial<TypeInfo> = {}): TypeInfo => ({
  name,
  vcpus,
  memoryGiB,
  architectures: ['x86_64'],
  burstable: false,
  ena: 'required',
  virtualization: ['hvm'],
  currentGeneration: true,
  ...more,
});
