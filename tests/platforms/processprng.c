/* ProcessPrng for Wine 8, which lacks it: Rust's std on Windows takes its random bytes (the
 * seeds of HashMap) from bcryptprimitives.dll's ProcessPrng, and a program that imports a
 * missing function does not start. Built as bcryptprimitives.dll and put beside the .exe under
 * test, it serves them from RtlGenRandom (advapi32's SystemFunction036), which Wine has.
 * Windows itself has the real one: this file is for the tests under Wine only. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
