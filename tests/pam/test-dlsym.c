/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The built pam_lockbox.so exports exactly the pam_sm_* entry points it implements and
 * nothing else: libpam finds auth, account and session, and no helper symbol (config, client,
 * libconfig or sd-bus wrappers) leaks into the process that loads it.
 *
 *   test-dlsym [MODULE]     (default: $PAM_MODULE, else $abs_top_builddir/pam_lockbox/.libs/pam_lockbox.so) */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"

static const char *const wanted[] = { "pam_sm_acct_mgmt", "pam_sm_authenticate", "pam_sm_close_session",
                                      "pam_sm_open_session", "pam_sm_setcred" };
static const char *const unwanted[] = { "pam_sm_chauthtok" };

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))
#define EXPORTS_MAX 256

struct exports {
        size_t n;
        const char *name[EXPORTS_MAX];
        unsigned char type[EXPORTS_MAX];
};

/* The defined global and weak symbols of the file's .dynsym, read from the ELF file itself
 * (what any loader of the module can bind to). Returns 0 or -1. */
static int read_exports(const char *path, struct exports *ret, void **map, size_t *map_len) {
        struct stat st;
        const ElfW(Ehdr) *eh;
        const ElfW(Shdr) *sh;
        const unsigned char *base;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0 || (size_t) st.st_size < sizeof(ElfW(Ehdr))) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        base = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (base == MAP_FAILED)
                return -1;
        *map = (void *) base;
        *map_len = (size_t) st.st_size;

        eh = (const ElfW(Ehdr) *) base;
        if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32) ||
            eh->e_shoff == 0 || eh->e_shoff + (size_t) eh->e_shnum * sizeof(ElfW(Shdr)) > *map_len)
                return -1;
        sh = (const ElfW(Shdr) *) (base + eh->e_shoff);

        ret->n = 0;
        for (size_t i = 0; i < eh->e_shnum; i++) {
                const ElfW(Sym) *syms;
                const char *strtab;
                size_t count;

                if (sh[i].sh_type != SHT_DYNSYM)
                        continue;
                if (sh[i].sh_link >= eh->e_shnum || sh[i].sh_offset + sh[i].sh_size > *map_len ||
                    sh[sh[i].sh_link].sh_offset + sh[sh[i].sh_link].sh_size > *map_len || sh[i].sh_entsize != sizeof(ElfW(Sym)))
                        return -1;
                syms = (const ElfW(Sym) *) (base + sh[i].sh_offset);
                strtab = (const char *) (base + sh[sh[i].sh_link].sh_offset);
                count = sh[i].sh_size / sizeof(ElfW(Sym));
                for (size_t k = 1; k < count; k++) {
                        unsigned bind = ELF64_ST_BIND(syms[k].st_info);

                        if (syms[k].st_shndx == SHN_UNDEF || (bind != STB_GLOBAL && bind != STB_WEAK && bind != STB_GNU_UNIQUE))
                                continue;
                        if (syms[k].st_name >= sh[sh[i].sh_link].sh_size || ret->n >= EXPORTS_MAX)
                                return -1;
                        ret->name[ret->n] = strtab + syms[k].st_name;
                        ret->type[ret->n] = (unsigned char) ELF64_ST_TYPE(syms[k].st_info);
                        ret->n++;
                }
        }
        return 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

int main(int argc, char **argv) {
        char default_path[4096];
        const char *path = argc > 1 ? argv[1] : getenv("PAM_MODULE");
        struct exports ex = {};
        void *handle, *map = NULL;
        size_t map_len = 0;
        char joined[2048] = "";

        if (!path) {
                const char *top = getenv("abs_top_builddir");

                snprintf(default_path, sizeof(default_path), "%s/pam_lockbox/.libs/pam_lockbox.so", top ? top : ".");
                path = default_path;
        }

        /* RTLD_NOW: every symbol the module needs must resolve, as libpam loads it. */
        handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!ok(handle != NULL, "dlopen(%s, RTLD_NOW)", path)) {
                printf("#   %s\n", dlerror());
                return tap_done();
        }

        for (size_t i = 0; i < N_ELEMENTS(wanted); i++) {
                void *sym = dlsym(handle, wanted[i]);
                Dl_info info = {};

                ok(sym != NULL, "%s is exported", wanted[i]);
                /* ...and it is the module's own, not one found in a library it links. */
                ok(sym && dladdr(sym, &info) && info.dli_fname && strcmp(info.dli_fname, path) == 0,
                   "%s is defined in the module itself", wanted[i]);
        }
        for (size_t i = 0; i < N_ELEMENTS(unwanted); i++)
                ok(dlsym(handle, unwanted[i]) == NULL, "%s is not exported (the module has no such stage)",
                   unwanted[i]);

        if (!ok(read_exports(path, &ex, &map, &map_len) == 0, "the module's dynamic symbol table can be read")) {
                dlclose(handle);
                return tap_done();
        }
        for (size_t i = 0; i < ex.n; i++)
                if (strncmp(ex.name[i], "pam_sm_", 7) == 0)
                        ok(ex.type[i] == STT_FUNC, "%s is a function symbol", ex.name[i]);
        qsort(ex.name, ex.n, sizeof(ex.name[0]), cmp_str);
        for (size_t i = 0; i < ex.n; i++) {
                strncat(joined, i ? " " : "", sizeof(joined) - strlen(joined) - 1);
                strncat(joined, ex.name[i], sizeof(joined) - strlen(joined) - 1);
        }
        /* The exact list, sorted: one name too many (a helper function, a libconfig or
         * sd-bus wrapper, _init/_fini-style leftovers) or too few fails. */
        is_str(joined, "pam_sm_acct_mgmt pam_sm_authenticate pam_sm_close_session pam_sm_open_session pam_sm_setcred",
               "the defined global symbols are exactly the five pam_sm_* it implements");

        munmap(map, map_len);
        dlclose(handle);
        return tap_done();
}
