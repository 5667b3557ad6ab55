/* LD_PRELOAD diagnostic: counts the memcpy calls of 4 KiB or more whose
 * destination lies 1-31 bytes past the source modulo 4 KiB, the case in
 * which glibc 2.36's `rep movsb` crawls on AMD Zen (about 1.4 GB/s instead
 * of 40; glibc bug 30994, fixed in 2.39), and prints the most common
 * (dst - src) mod 4096 at exit. How W6b's copies were found to sit in that
 * case with rustls' buffered reader (benches/RESULTS.md).
 *
 *   cc -O2 -shared -fPIC -o /tmp/spy.so benches/memcpy_alias_spy.c -ldl
 *   LD_PRELOAD=/tmp/spy.so c_examples/build/bench W6b https://127.0.0.1:8091/big10m
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
static void *(*real)(void*,const void*,size_t);
static long hist[4096]; static long big, bad; static long badbytes, bytes;
void *memcpy(void *d, const void *s, size_t n){
  if(!real) real=dlsym(RTLD_NEXT,"memcpy");
  if(n>=4096){ unsigned o=((uintptr_t)d-(uintptr_t)s)&4095; big++; bytes+=n; if(o>=1&&o<=31){bad++; badbytes+=n;} hist[o]++; }
  return real(d,s,n);
}
__attribute__((destructor)) static void fin(void){
  fprintf(stderr,"memcpy>=4K: %ld calls %ld MB, bad alias %ld calls %ld MB\n",big,bytes>>20,bad,badbytes>>20);
  int top[8]={0}; for(int k=0;k<8;k++){long m=-1;int mi=0;for(int i=0;i<4096;i++){int used=0;for(int j=0;j<k;j++)if(top[j]==i)used=1; if(!used&&hist[i]>m){m=hist[i];mi=i;}} top[k]=mi; fprintf(stderr,"  off %d: %ld\n",mi,hist[mi]);}
}
